//! `tariscope-sim`: the Tariscope API emulator as a standalone server.

fn main() -> std::process::ExitCode {
    eprintln!("tariscope-sim: not built yet");
    std::process::ExitCode::from(1)
}
