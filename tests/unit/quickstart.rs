//! The README's quickstart runs as written: every `scripts/postback` line of
//! its command block, from the repository's root, exits 0 and prints what
//! the comment beside it promises. (`make demo` is the binary's `demo`,
//! checked by `demo.rs`; `make test` is the run this test is part of.)

use std::path::Path;
use std::process::Command;

/// The commands of the block that follows the README's quickstart marker.
fn quickstart_commands(readme: &str) -> Vec<String> {
    let marker = readme.find("<!-- quickstart:").expect("the README marks its quickstart block");
    let block = &readme[marker..];
    let start = block.find("```sh\n").expect("a sh block after the marker") + 6;
    let end = start + block[start..].find("```").expect("the block ends");
    block[start..end]
        .lines()
        .map(|l| l.split(" #").next().unwrap_or("").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn every_scripts_postback_command_of_the_quickstart_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let commands = quickstart_commands(&readme);
    let ours: Vec<&String> = commands.iter().filter(|c| c.starts_with("scripts/postback ")).collect();
    assert_eq!(ours.len(), 3, "{commands:?}");
    // what each one must print, so that a command that runs but does the
    // wrong thing fails too
    let expect = [
        ("scripts/postback check-config", "postback"),
        ("scripts/postback test", "line 1:"),
        ("scripts/postback partners list", "voluum"),
    ];
    for command in ours {
        let out = Command::new("sh").arg("-c").arg(command).current_dir(root).output().expect("run sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{command}: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let (_, want) = expect.iter().find(|(prefix, _)| command.starts_with(prefix)).expect("a known command");
        assert!(stdout.contains(want), "{command} printed:\n{stdout}");
    }
}
