//! Standard output and error of the commands, without panics.
//!
//! Owns: writing the commands' lines ([`Out`], the [`outln!`](crate::outln) macro), and what
//! a failed write means: a closed pipe (`plan | head -2`) ends the output quietly with the
//! command's own exit code, any other failure (`> /dev/full`) is one line on stderr and exit 1
//! ([`Out::finish`]). Messages to stderr go through [`errln!`](crate::errln), which never
//! panics either. Must not: decide what a command prints.
//!
//! Written by hand: `println!` panics on a write error ("failed printing to stdout"), and the
//! Rust runtime ignores SIGPIPE, so a closed pipe surfaces as `EPIPE` here.

use std::fmt;
use std::io::{self, Write};

use crate::daemon::Exit;

/// Where a command writes its output; remembers the first write error and skips the rest.
pub struct Out {
    sink: Box<dyn Write + Send>,
    error: Option<io::Error>,
}

impl Out {
    /// Standard output.
    pub fn stdout() -> Out {
        Out::to(io::stdout())
    }

    /// Any writer (tests).
    pub fn to(sink: impl Write + Send + 'static) -> Out {
        Out {
            sink: Box::new(sink),
            error: None,
        }
    }

    /// Writes one line (use [`outln!`](crate::outln)).
    pub fn line(&mut self, args: fmt::Arguments<'_>) {
        if self.error.is_none()
            && let Err(e) = writeln!(self.sink, "{args}")
        {
            self.error = Some(e);
        }
    }

    /// Writes bytes as they are (completion scripts).
    pub fn bytes(&mut self, bytes: &[u8]) {
        if self.error.is_none()
            && let Err(e) = self.sink.write_all(bytes)
        {
            self.error = Some(e);
        }
    }

    /// True once a write failed (a command may stop producing output early).
    pub fn is_closed(&self) -> bool {
        self.error.is_some()
    }

    /// Flushes and turns a write failure into the exit code: a closed pipe keeps `exit` and
    /// says nothing; any other failure prints one line to stderr and is [`Exit::Runtime`].
    pub fn finish(mut self, exit: Exit) -> Exit {
        if self.error.is_none()
            && let Err(e) = self.sink.flush()
        {
            self.error = Some(e);
        }
        match self.error {
            None => exit,
            Some(e) if e.kind() == io::ErrorKind::BrokenPipe => exit,
            Some(e) => {
                crate::errln!("tariscope-sync: cannot write the output: {e}");
                Exit::Runtime
            }
        }
    }
}

/// `outln!(out, "...", args)`: one line to an [`Out`].
#[macro_export]
macro_rules! outln {
    ($out:expr) => {
        $out.line(format_args!(""))
    };
    ($out:expr, $($arg:tt)*) => {
        $out.line(format_args!($($arg)*))
    };
}

/// `errln!("...", args)`: one line to stderr; a failed write is ignored (stderr is where a
/// failure would be reported, so there is nowhere left to say it).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing(io::ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(self.0))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_keeps_the_exit_code_and_a_full_disk_is_exit_1() {
        let mut out = Out::to(Failing(io::ErrorKind::BrokenPipe));
        outln!(out, "a {}", 1);
        outln!(out, "b");
        assert!(out.is_closed());
        assert_eq!(out.finish(Exit::Partial), Exit::Partial);
        let mut out = Out::to(Failing(io::ErrorKind::StorageFull));
        outln!(out, "a");
        assert_eq!(out.finish(Exit::Ok), Exit::Runtime);
        let mut out = Out::to(Vec::new());
        outln!(out, "fine");
        assert!(!out.is_closed());
        assert_eq!(out.finish(Exit::Ok), Exit::Ok);
    }
}
