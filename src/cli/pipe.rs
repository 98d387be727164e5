//! A closed stdout (`quire search | head -1`) ends a command the way it ends any
//! Unix filter: silently, by SIGPIPE (a shell reports status 141).
//!
//! Rust ignores SIGPIPE, so `println!` to a closed pipe panics instead. SIGPIPE is
//! not simply restored to its default: the HTTP client writes to sockets with
//! `writev`, which would then kill the command when a node hangs up, where the
//! command must say that the connection broke. So the one panic a closed stdout
//! causes is turned into that signal, and every other panic is reported as before.

/// Installs the panic hook that ends the process quietly when stdout is closed.
pub fn end_quietly_when_stdout_closes() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload_as_str().is_some_and(is_closed_stdout) {
            die_of_sigpipe();
        }
        report(info);
    }));
}

/// Whether a panic message is the one `println!` gives when stdout is closed.
fn is_closed_stdout(message: &str) -> bool {
    message.starts_with("failed printing to stdout") && message.contains("Broken pipe")
}

/// Ends the process by SIGPIPE, as if the write had raised it.
pub fn die_of_sigpipe() -> ! {
    // SAFETY: restoring a signal's default disposition and raising it affect only
    // this process, which is meant to end here.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(128 + libc::SIGPIPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closed_stdout_is_quiet() {
        assert!(is_closed_stdout(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_stdout(
            "failed printing to stderr: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_stdout("index out of bounds"));
    }
}
