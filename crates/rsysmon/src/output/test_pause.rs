//! A test switch that stalls `run`'s output, to prove where back-pressure
//! lands: `RSYSMON_TEST_PAUSE_OUTPUT=AFTER_MS:FOR_MS` makes the output
//! stop writing for FOR_MS milliseconds, once, AFTER_MS milliseconds after
//! it started. Events keep coming meanwhile; they must end up waiting in
//! the kernel ring buffer, not dropped in user space.

use std::io::{self, Write};
use std::time::{Duration, Instant};

/// The environment variable that sets the pause.
pub const VAR: &str = "RSYSMON_TEST_PAUSE_OUTPUT";

/// One pause: when (after the output starts) and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    pub after: Duration,
    pub length: Duration,
}

impl Pause {
    /// The pause the environment asks for, if any; a malformed value is an
    /// error naming the variable.
    pub fn from_env() -> anyhow::Result<Option<Pause>> {
        match std::env::var(VAR) {
            Ok(value) => Pause::parse(&value).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(e) => anyhow::bail!("{VAR}: {e}"),
        }
    }

    fn parse(value: &str) -> anyhow::Result<Pause> {
        let ms = |text: &str| text.trim().parse::<u64>().ok().map(Duration::from_millis);
        match value.split_once(':').and_then(|(after, length)| Some((ms(after)?, ms(length)?))) {
            Some((after, length)) => Ok(Pause { after, length }),
            None => anyhow::bail!("{VAR}={value:?}: expected AFTER_MS:FOR_MS, e.g. 1000:500"),
        }
    }
}

/// A writer that sleeps through `pause` on the first write due after it.
pub struct PausingWriter<W> {
    inner: W,
    due: Option<(Instant, Duration)>,
}

impl<W: Write> PausingWriter<W> {
    pub fn new(inner: W, pause: Option<Pause>) -> Self {
        Self { inner, due: pause.map(|p| (Instant::now() + p.after, p.length)) }
    }
}

impl<W: Write> Write for PausingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some((at, length)) = self.due {
            if Instant::now() >= at {
                self.due = None;
                std::thread::sleep(length);
            }
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_after_and_length_in_ms() {
        let p = Pause::parse("1000:500").unwrap();
        assert_eq!(p, Pause { after: Duration::from_millis(1000), length: Duration::from_millis(500) });
        for bad in ["", "500", "a:b", "1:", ":2", "-1:5"] {
            assert!(Pause::parse(bad).unwrap_err().to_string().contains(VAR), "{bad}");
        }
    }

    #[test]
    fn pauses_once_on_the_first_write_due() {
        let pause = Pause { after: Duration::ZERO, length: Duration::from_millis(100) };
        let mut w = PausingWriter::new(Vec::new(), Some(pause));
        let start = Instant::now();
        w.write_all(b"a").unwrap();
        assert!(start.elapsed() >= Duration::from_millis(100));
        let again = Instant::now();
        w.write_all(b"b").unwrap();
        assert!(again.elapsed() < Duration::from_millis(100));
        assert_eq!(w.inner, b"ab");
    }
}
