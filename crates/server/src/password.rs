//! Dashboard passwords: what one must be, the argon2id hash that is all the store keeps, and
//! the bounded queue through which the server runs every hash and check.

use contactd_api::ErrorCode;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use argon2::password_hash::phc::Output;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version};
use rand::Rng;
use rand::distr::Alphanumeric;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::domain::Invalid;

/// Most argon2 runs the server does at once, whatever the number of cores: each holds
/// 19 MiB while it runs (docs/robustness.md#dashboard-logins).
const MAX_CHECKERS: usize = 4;
/// How long a login waits for a turn at argon2 before it is answered 503 unchecked.
pub const QUEUE_WAIT: Duration = Duration::from_secs(3);

/// Shortest password accepted, in characters (NIST SP 800-63B's minimum).
const MIN_CHARS: usize = 8;
/// Longest password accepted, in characters: long enough for any passphrase, short enough
/// that a login cannot make the server hash megabytes.
const MAX_CHARS: usize = 256;
/// Length of a generated password: 20 alphanumerics, about 119 bits.
const GENERATED_CHARS: usize = 20;

/// A password that meets the rules, ready to hash.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Password(…)")
    }
}

impl Password {
    /// Accepts a password of 8 to 256 characters; surrounding spaces count, as typed.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let chars = text.chars().count();
        if !(MIN_CHARS..=MAX_CHARS).contains(&chars) {
            return Err(Invalid::new(
                ErrorCode::InvalidPassword,
                format!("a password must be {MIN_CHARS} to {MAX_CHARS} characters long"),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// A random password, for the user the first run creates.
    pub fn generate() -> Self {
        let text = rand::rng()
            .sample_iter(Alphanumeric)
            .take(GENERATED_CHARS)
            .map(char::from)
            .collect();
        Self(text)
    }

    /// The password itself, to show the one person who must learn it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its argon2id hash (a PHC string, salt and parameters included), with the crate's
    /// defaults (OWASP's 19 MiB, 2 passes). Tens of milliseconds of CPU: call it off the
    /// async threads.
    pub fn hash(&self) -> String {
        Argon2::default()
            .hash_password(self.0.as_bytes())
            .map(|hash| hash.to_string())
            .expect("argon2 hashes any password of at most 256 characters, given OS randomness")
    }
}

/// Whether `password` is the one `hash` was made from. A malformed hash matches nothing.
/// As slow as [`Password::hash`], on purpose.
pub fn verify(password: &str, hash: &str) -> bool {
    verify_in(&mut Vec::new(), password, hash)
}

/// [`verify`], with argon2's working memory in `memory` (grown to the size the hash asks
/// for, and kept for the next run) rather than allocated and freed on each run.
fn verify_in(memory: &mut Vec<Block>, password: &str, hash: &str) -> bool {
    let Ok(hash) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    memory.resize(memory.len().max(params.block_count()), Block::default());
    let mut computed = [0; Output::MAX_LENGTH];
    let Some(computed) = computed.get_mut(..expected.len()) else {
        return false;
    };
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, computed, &mut memory[..])
        .is_ok()
        // `Output`'s equality takes the same time wherever the outputs differ.
        && Output::new(computed).is_ok_and(|computed| computed == *expected)
}

/// Spends the time a [`verify`] takes, for a login whose email matches no user, so that
/// response times do not tell which emails have an account.
fn verify_nothing_in(memory: &mut Vec<Block>, password: &str) {
    static HASH: LazyLock<String> = LazyLock::new(|| Password::generate().hash());
    verify_in(memory, password, &HASH);
}

/// The server's password hashing: at most a few argon2 runs at once, each on one of a few
/// threads of its own, and a login that cannot get a turn within a deadline is turned away
/// unchecked (docs/robustness.md#dashboard-logins).
///
/// Both bounds are about memory. Argon2 needs 19 MiB for each run, so runs at once are
/// capped. And the memory of a run is not allocated per run: each thread allocates it
/// once and keeps it for its next runs. Allocated and freed per run, glibc kept the freed
/// blocks without reusing them (two threads, 90 runs: 400 MiB, never returned; on tokio's
/// blocking pool, 200 logins at once: 3.9 GB), so the server holds exactly its threads'
/// memory, 19 MiB each, however many logins come.
///
/// Clones share the turns and the threads, which stop when the last clone is dropped.
/// Only the admin CLI, one run per command, hashes without it.
#[derive(Debug, Clone)]
pub struct PasswordChecker {
    turns: Arc<Semaphore>,
    jobs: Sender<Job>,
    queue_wait: Duration,
}

/// One argon2 run, sent to a checker thread with the turn it holds; it is lent the
/// thread's working memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// No turn at argon2 came free within the queue's deadline: the server is busy checking
/// other logins' passwords.
#[derive(Debug, thiserror::Error)]
#[error("too many passwords are being checked at once")]
pub struct Busy;

/// A run on a checker thread panicked (argon2 does not, given valid parameters).
#[derive(Debug, thiserror::Error)]
#[error("the password check stopped unexpectedly")]
pub struct CheckFailed;

impl PasswordChecker {
    /// A checker with one thread per core, at least 2 and at most 4, and
    /// [`QUEUE_WAIT`] as the deadline.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self::new(cores.clamp(2, MAX_CHECKERS), QUEUE_WAIT)
    }

    /// A checker with `threads` runs at once (at least 1), a login waiting at most
    /// `queue_wait` for one.
    pub fn new(threads: usize, queue_wait: Duration) -> Self {
        let threads = threads.max(1);
        let (jobs, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || check_until_closed(&receiver))
                .expect("the OS starts a thread for password checks");
        }
        Self {
            turns: Arc::new(Semaphore::new(threads)),
            jobs,
            queue_wait,
        }
    }

    /// Waits, at most the queue's deadline, for a turn at argon2. The turn is taken before
    /// anything else a login does, so what waits in the queue holds no database write and
    /// no memory beyond its request.
    pub async fn turn(&self) -> Result<Turn, Busy> {
        let permit = tokio::time::timeout(self.queue_wait, Arc::clone(&self.turns).acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        Ok(Turn {
            permit,
            jobs: self.jobs.clone(),
        })
    }
}

/// What a checker thread does: one run after another, all in the same memory, until every
/// checker is dropped.
fn check_until_closed(receiver: &Mutex<Receiver<Job>>) {
    let mut memory = Vec::new();
    loop {
        let job = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        let Ok(job) = job else { return };
        // A run that panics drops its answer (its login gets a 500), not the thread.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
    }
}

/// A turn at argon2: one hash or check, on a checker thread.
#[derive(Debug)]
pub struct Turn {
    permit: OwnedSemaphorePermit,
    jobs: Sender<Job>,
}

impl Turn {
    /// Whether `password` matches `hash`. Without a hash (no such user) it spends the same
    /// time, on a hash of a password no one has, and says no.
    pub async fn verify(self, password: String, hash: Option<String>) -> Result<bool, CheckFailed> {
        self.on_checker_thread(move |memory| match hash {
            Some(hash) => verify_in(memory, &password, &hash),
            None => {
                verify_nothing_in(memory, &password);
                false
            }
        })
        .await
    }

    /// The password's hash, as [`Password::hash`]. Only the first run hashes, once, so
    /// this one run allocates its own memory.
    pub async fn hash(self, password: Password) -> Result<String, CheckFailed> {
        self.on_checker_thread(move |_| password.hash()).await
    }

    /// Runs `work` on a checker thread, in its kept memory, and waits for its answer.
    async fn on_checker_thread<T: Send + 'static>(
        self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, CheckFailed> {
        let (answer, answered) = oneshot::channel();
        let permit = self.permit;
        let job: Job = Box::new(move |memory| {
            let result = work(memory);
            // The turn ends when the run does, even if the login that took it is gone (its
            // client hung up): a turn counts the memory in use, not the logins waiting.
            drop(permit);
            let _ = answer.send(result);
        });
        self.jobs.send(job).map_err(|_| CheckFailed)?;
        answered.await.map_err(|_| CheckFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let password = Password::parse("correct horse").expect("valid");
        let hash = password.hash();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse", &hash));
        assert!(!verify("correct horse ", &hash));
        assert!(!verify("correct horse", "not a hash"));
        assert_ne!(hash, password.hash(), "every hash has its own salt");
    }

    #[test]
    fn passwords_are_8_to_256_characters() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"é".repeat(256)).is_ok());
        assert!(Password::parse(&"é".repeat(257)).is_err());
    }

    #[test]
    fn verifying_in_kept_memory_agrees_with_argon2s_own_check() {
        use argon2::PasswordVerifier;
        let mut memory = Vec::new();
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).expect("valid parameters"),
        );
        let hashes = [
            Password::parse("correct horse").expect("valid").hash(),
            small
                .hash_password(b"correct horse")
                .expect("hashed")
                .to_string(),
        ];
        for hash in &hashes {
            for password in ["correct horse", "correct horse ", "", "Correct horse"] {
                assert_eq!(
                    verify_in(&mut memory, password, hash),
                    Argon2::default()
                        .verify_password(password.as_bytes(), hash.as_str())
                        .is_ok(),
                    "{password:?} against {hash}"
                );
            }
        }
        assert_eq!(
            memory.len(),
            19 * 1024,
            "the memory grew to the largest hash's"
        );
    }

    #[tokio::test]
    async fn a_checker_runs_as_many_at_once_as_it_has_threads_and_turns_the_rest_away() {
        let checker = PasswordChecker::new(2, Duration::from_millis(50));
        let first = checker.turn().await.expect("a free turn");
        let _second = checker.turn().await.expect("a free turn");
        assert!(matches!(checker.turn().await, Err(Busy)));
        let hash = Password::parse("correct horse").expect("valid").hash();
        assert!(
            first
                .verify("correct horse".to_owned(), Some(hash))
                .await
                .expect("checked")
        );
        let third = checker.turn().await.expect("the first turn ended");
        assert!(
            !third
                .verify("anything".to_owned(), None)
                .await
                .expect("checked")
        );
    }

    #[test]
    fn generated_passwords_are_valid_and_distinct() {
        let first = Password::generate();
        assert!(Password::parse(first.expose()).is_ok());
        assert_ne!(first.expose(), Password::generate().expose());
        assert_eq!(format!("{first:?}"), "Password(…)");
    }
}
