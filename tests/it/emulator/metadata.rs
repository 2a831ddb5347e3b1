//! The package the emulator serves: the one built in, or an admin's copy given with
//! `--metadata DIR`, refused (naming the file and the rule) when a real org would refuse it.

use std::path::{Path, PathBuf};
use std::process::Command;

use plansync::emulator::Emulator;

use super::{start_with, Api};

const JUNCTION: &str =
    "force-app/main/default/objects/Account_Plan_Account__c/Account_Plan_Account__c.object-meta.xml";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the shipped package in a temp dir.
fn package_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("salesforce");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/salesforce"),
        &root,
    );
    (dir, root)
}

fn edit(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn the_binary_refuses_a_package_whose_detail_object_is_not_controlled_by_its_parent() {
    let (_dir, root) = package_copy();
    edit(
        &root,
        JUNCTION,
        "<sharingModel>ControlledByParent</sharingModel>",
        "<sharingModel>ReadWrite</sharingModel>",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_plansync"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--seed", "empty"])
        .arg("--metadata")
        .arg(&root)
        .output()
        .unwrap();
    assert!(!output.status.success(), "the emulator started");
    assert!(output.stdout.is_empty(), "it announced an address");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(JUNCTION), "{stderr}");
    assert!(stderr.contains("[detail-sharing]"), "{stderr}");
    assert!(stderr.contains("ControlledByParent"), "{stderr}");
}

#[tokio::test]
async fn an_extended_copy_of_the_package_is_served() {
    let (_dir, root) = package_copy();
    std::fs::write(
        root.join("force-app/main/default/objects/Account_Plan__c/fields/Region__c.field-meta.xml"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<CustomField xmlns="http://soap.sforce.com/2006/04/metadata">
    <fullName>Region__c</fullName>
    <label>Region</label>
    <length>40</length>
    <type>Text</type>
</CustomField>
"#,
    )
    .unwrap();
    let emu = start_with(Emulator::builder().metadata(&root)).await;
    let api = Api::login(&emu).await;
    let (status, describe) = api.get("/sobjects/Account_Plan__c/describe").await;
    assert_eq!(status, reqwest::StatusCode::OK, "{describe}");
    let region = describe["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Region__c")
        .expect("the admin's field is served");
    assert_eq!(region["length"], 40);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_copy_granting_edit_on_a_master_detail_field_is_refused_in_process() {
    let (_dir, root) = package_copy();
    edit(
        &root,
        "force-app/main/default/permissionsets/Account_Plan_User.permissionset-meta.xml",
        "<field>Account_Plan_Account__c.Account__c</field>",
        "<field>Account_Plan_Account__c.Account_Plan__c</field>",
    );
    let err = Emulator::builder()
        .metadata(&root)
        .start()
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("Account_Plan_User.permissionset-meta.xml"),
        "{err}"
    );
    assert!(err.contains("[permission-on-required-field]"), "{err}");
}
