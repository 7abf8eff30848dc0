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

#[test]
fn variables_that_name_no_setting_are_left_out() {
    // The command line's own variables and the test suite's share the
    // prefix; a server started from the same shell must not refuse them.
    std::env::set_var("HOOKGATE_SERVER", "http://127.0.0.1:1");
    std::env::set_var("HOOKGATE_PYTHON_SOMETHING", "/usr/bin/python3");
    let settings = Settings::load(None).expect("unrelated variables are ignored");
    assert_eq!(settings.listen, Settings::default().listen);

    let unused = Settings::unused_environment();
    assert!(
        unused.contains(&"HOOKGATE_PYTHON_SOMETHING".to_owned()),
        "{unused:?}"
    );
    assert!(!unused.iter().any(|name| name == "HOOKGATE_CONFIG"));
}
