//! The documented settings file at the repository root parses, passes
//! validation, and says exactly what the defaults are.

use hookgate_server::settings::Settings;

#[test]
fn documented_settings_file_matches_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../hookgate.example.toml");
    let from_file = Settings::load(Some(std::path::Path::new(path))).expect("the example loads");
    let defaults = Settings::default();

    let as_json = |s: &Settings| serde_json::to_value(s).expect("settings serialise");
    assert_eq!(as_json(&from_file), as_json(&defaults));
}
