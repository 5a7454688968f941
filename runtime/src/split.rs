//! New communicators from old ones: [`Communicator::dup`] and [`Communicator::split`].
//!
//! Both are collective over the parent. Every process keeps the next context id it has
//! not used; a new communicator takes the largest such id among the parent's members
//! (one `allreduce(Max)`), so its traffic can never match another communicator's on any
//! process it shares with it.

use std::sync::atomic::Ordering;

use pirun_collectives::op::Max;
use pirun_collectives::Collectives;

use crate::comm::Communicator;
use crate::error::Result;

impl Communicator {
    /// A new communicator with the same ranks whose messages never match this one's
    /// (`MPI_Comm_dup`), e.g. for a library's private traffic. Collective.
    ///
    /// ```
    /// let world = pirun::init()?;
    /// let private = world.dup()?;
    /// world.send(0, 1, &[1u8])?;
    /// private.send(0, 1, &[2u8])?;
    /// assert_eq!(private.recv::<u8>(0, 1)?.0, [2]);
    /// assert_eq!(world.recv::<u8>(0, 1)?.0, [1]);
    /// # Ok::<(), pirun::Error>(())
    /// ```
    pub fn dup(&self) -> Result<Communicator> {
        let ctx = self.agree_on_context()?;
        let ranks = (0..self.size())
            .map(|r| self.world_rank(r))
            .collect::<Result<_>>()?;
        Ok(self
            .derive(ctx, ranks)
            .expect("this rank is a member of its own group"))
    }

    /// Splits the communicator (`MPI_Comm_split`): ranks passing the same `color` form a
    /// new communicator, ordered by `key` and then by their rank here. A rank passing
    /// `None` takes part but joins none and gets `None`. Collective.
    ///
    /// ```
    /// use pirun::prelude::*;
    /// let world = pirun::init()?;
    /// // Even and odd ranks, each group in reverse order.
    /// let half = world.split(Some((world.rank() % 2) as u32), -(world.rank() as i64))?.unwrap();
    /// assert_eq!(half.size(), (world.size() + 1 - world.rank() % 2) / 2);
    /// let total = half.allreduce(&[1u32], Sum)?;
    /// assert_eq!(total[0] as usize, half.size());
    /// # Ok::<(), pirun::Error>(())
    /// ```
    pub fn split(&self, color: Option<u32>, key: i64) -> Result<Option<Communicator>> {
        // Everyone learns everyone's (color, key); u64::MAX stands for "no color".
        let mine = [color.map_or(u64::MAX, u64::from), key as u64];
        let all = self.allgather(&mine)?;
        let ctx = self.agree_on_context()?;
        let Some(color) = color else {
            return Ok(None);
        };
        let mut members: Vec<(i64, usize)> = all
            .chunks_exact(2)
            .enumerate()
            .filter(|(_, ck)| ck[0] == u64::from(color))
            .map(|(r, ck)| (ck[1] as i64, r))
            .collect();
        members.sort_unstable();
        let ranks = members
            .into_iter()
            .map(|(_, r)| self.world_rank(r))
            .collect::<Result<_>>()?;
        Ok(self.derive(ctx, ranks))
    }

    /// Picks a context id unused on every member and reserves it everywhere.
    fn agree_on_context(&self) -> Result<u32> {
        let next = &self.engine().next_ctx;
        let proposal = next.load(Ordering::Relaxed);
        let agreed = self.allreduce(&[proposal], Max)?[0];
        next.fetch_max(agreed + 1, Ordering::Relaxed);
        Ok(agreed)
    }
}
