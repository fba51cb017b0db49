#[test]
fn nested() {
    let s = std::process::Command::new(env!("CARGO")).args(["build", "-p", "shared"]).status().unwrap();
    assert!(s.success());
}
