//! The configuration file (TOML) layered with `PLANSYNC__SECTION__KEY` environment variables.
