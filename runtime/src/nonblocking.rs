//! Handles of non-blocking operations: `wait`, `test`, [`wait_all`] and [`wait_any`].
//!
//! A request owns everything its operation needs (the data of an `isend`, the buffer of an
//! `irecv`), so it can be moved freely while the operation proceeds in the background.
//! Dropping an unfinished request withdraws a receive; a send still goes out.

use crate::comm::Communicator;
use crate::error::{Error, Result};
use crate::request::{Outcome, ReqId};

/// A non-blocking operation in progress, yielding a `T` when it completes.
#[must_use = "a request does nothing useful unless waited for or tested"]
pub struct Request<T> {
    comm: Communicator,
    id: ReqId,
    finish: fn(&Communicator, Result<Outcome>) -> Result<T>,
    done: bool,
}

impl<T> std::fmt::Debug for Request<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("done", &self.done)
            .finish()
    }
}

impl<T> Request<T> {
    pub(crate) fn new(
        comm: Communicator,
        id: ReqId,
        finish: fn(&Communicator, Result<Outcome>) -> Result<T>,
    ) -> Self {
        Request {
            comm,
            id,
            finish,
            done: false,
        }
    }

    /// Blocks until the operation completes and returns its result.
    pub fn wait(mut self) -> Result<T> {
        let out = self.comm.engine().wait(self.id);
        self.done = true;
        (self.finish)(&self.comm, out)
    }

    /// Makes progress and returns the result if the operation has completed, `Ok(None)`
    /// if it has not yet. After a result was returned the request is spent, and further
    /// calls return [`Error::RequestSpent`].
    ///
    /// ```
    /// let world = pirun::init()?;
    /// let mut r = world.irecv::<u8>(0, 0)?;
    /// assert!(r.test()?.is_none());
    /// world.send(0, 0, &[1u8])?;
    /// let (v, _) = loop {
    ///     if let Some(got) = r.test()? { break got; }
    /// };
    /// assert_eq!(v, [1]);
    /// # Ok::<(), pirun::Error>(())
    /// ```
    pub fn test(&mut self) -> Result<Option<T>> {
        if self.done {
            return Err(Error::RequestSpent);
        }
        match self.comm.engine().test(self.id) {
            None => Ok(None),
            Some(out) => {
                self.done = true;
                (self.finish)(&self.comm, out).map(Some)
            }
        }
    }
}

impl<T> Drop for Request<T> {
    fn drop(&mut self) {
        if !self.done {
            self.comm.engine().cancel(self.id);
        }
    }
}

/// Waits for every request; returns their results in order (the first error, if any,
/// after all have finished).
pub fn wait_all<T>(requests: Vec<Request<T>>) -> Result<Vec<T>> {
    let results: Vec<Result<T>> = requests.into_iter().map(Request::wait).collect();
    results.into_iter().collect()
}

/// Waits until one of the requests completes; removes it from `requests` and returns its
/// index and result. Fails with [`Error::NoRequests`] if `requests` is empty.
///
/// ```
/// let world = pirun::init()?;
/// let mut reqs = vec![world.irecv::<u8>(0, 1)?, world.irecv::<u8>(0, 2)?];
/// world.send(0, 2, &[9u8])?;
/// let (i, (v, _)) = pirun::wait_any(&mut reqs)?;
/// assert_eq!((i, v), (1, vec![9]));
/// # Ok::<(), pirun::Error>(())
/// ```
pub fn wait_any<T>(requests: &mut Vec<Request<T>>) -> Result<(usize, T)> {
    let Some(first) = requests.first() else {
        return Err(Error::NoRequests);
    };
    let engine = first.comm.engine().clone();
    let ids: Vec<ReqId> = requests.iter().map(|r| r.id).collect();
    let i = engine.block_until(|st| ids.iter().position(|&id| st.reqs.is_done(id)));
    let r = requests.remove(i);
    Ok((i, r.wait()?))
}
