//! One persistent pool of worker threads for the whole process, created on
//! first use (never a thread per call). Its size is `KVPLUG_NATIVE_THREADS`
//! when that is a positive integer, else `available_parallelism()`; it is
//! read once, when the pool starts. The calling thread works too, so a pool
//! of N threads spawns N - 1 workers.
//!
//! [`Pool::run`] is a parallel for over item indices with dynamic
//! scheduling (an atomic counter), and blocks until every item is done, so
//! the closure may borrow the caller's stack.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;

/// The environment variable that sizes the pool.
pub const THREADS_ENV_VAR: &str = "KVPLUG_NATIVE_THREADS";

/// One `run` call, shared with the workers by pointer. Valid until every
/// worker has checked in (see `Pool::run`), which is what makes erasing the
/// closure's lifetime sound.
#[derive(Clone, Copy)]
struct Job {
    body: *const (dyn Fn(usize) + Sync),
    items: usize,
    next: *const AtomicUsize,
    panic: *const Mutex<Option<Box<dyn Any + Send>>>,
}

// The pointees outlive every access: `run` waits for all workers first.
unsafe impl Send for Job {}

struct State {
    job: Option<Job>,
    generation: u64,
    /// Workers that have not finished the current generation.
    busy: usize,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    done: Condvar,
}

/// The process-wide pool.
pub struct Pool {
    shared: Arc<Shared>,
    workers: usize,
    /// Serialises `run` calls from different JavaScript threads.
    submit: Mutex<()>,
}

fn configured_threads() -> usize {
    let from_env = std::env::var(THREADS_ENV_VAR)
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .filter(|count| *count >= 1);
    from_env.unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The pool, started on first use.
pub fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::start(configured_threads()))
}

/// Claims items until none are left; a panic is kept for the caller.
unsafe fn work(job: Job) {
    let next = &*job.next;
    loop {
        let item = next.fetch_add(1, Ordering::Relaxed);
        if item >= job.items {
            return;
        }
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| (*job.body)(item))) {
            // Stop handing out items, and remember the first panic.
            next.store(job.items, Ordering::Relaxed);
            let mut slot = (*job.panic).lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(payload);
        }
    }
}

fn worker(shared: Arc<Shared>) {
    let mut seen = 0u64;
    loop {
        let job = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            while state.generation == seen {
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            seen = state.generation;
            state.job
        };
        if let Some(job) = job {
            unsafe { work(job) };
        }
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.busy -= 1;
        if state.busy == 0 {
            shared.done.notify_all();
        }
    }
}

impl Pool {
    fn start(threads: usize) -> Pool {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                job: None,
                generation: 0,
                busy: 0,
            }),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let mut workers = 0;
        for index in 1..threads {
            let shared = Arc::clone(&shared);
            let spawned = thread::Builder::new()
                .name(format!("kvplug-worker-{index}"))
                .spawn(move || worker(shared));
            // A thread that cannot start only makes the pool smaller.
            if spawned.is_ok() {
                workers += 1;
            }
        }
        Pool {
            shared,
            workers,
            submit: Mutex::new(()),
        }
    }

    /// Threads that run items: the workers plus the caller.
    pub fn threads(&self) -> usize {
        self.workers + 1
    }

    /// Calls `body(i)` for every `i` in `0..items`, spread over the pool,
    /// and returns when all are done. A panic in `body` is resumed here.
    pub fn run(&self, items: usize, body: &(dyn Fn(usize) + Sync)) {
        if items <= 1 || self.workers == 0 {
            (0..items).for_each(body);
            return;
        }
        let _turn = self.submit.lock().unwrap_or_else(|e| e.into_inner());
        let next = AtomicUsize::new(0);
        let panic = Mutex::new(None);
        // Erase the borrow's lifetime: sound because this function does not
        // return before `busy` is back to 0, after which no worker holds it.
        let body: *const (dyn Fn(usize) + Sync + '_) = body;
        let job = Job {
            body: unsafe {
                std::mem::transmute::<
                    *const (dyn Fn(usize) + Sync + '_),
                    *const (dyn Fn(usize) + Sync),
                >(body)
            },
            items,
            next: &next,
            panic: &panic,
        };
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.job = Some(job);
            state.generation += 1;
            state.busy = self.workers;
        }
        self.shared.wake.notify_all();
        unsafe { work(job) };
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.busy > 0 {
            state = self
                .shared
                .done
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        state.job = None;
        drop(state);
        if let Some(payload) = panic.into_inner().unwrap_or_else(|e| e.into_inner()) {
            resume_unwind(payload);
        }
    }
}

/// A pointer that work items on several threads write through, each to its
/// own disjoint part (the caller's invariant, stated where it is used).
#[derive(Clone, Copy)]
pub struct SharedMut<T>(pub *mut T);

unsafe impl<T: Send> Send for SharedMut<T> {}
unsafe impl<T: Send> Sync for SharedMut<T> {}
