//! Collectives of serde values, encoded with postcard: broadcast, gather, scatter and
//! allgather of arbitrary `Serialize + DeserializeOwned` types. Decode failures name the rank whose
//! value could not be decoded.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::check_root;
use crate::wire::{Ctx, Header, OpCode};
use crate::{allgather, bcast, gather, scatter, CollectiveError, PointToPoint};

fn encode<T: Serialize>(rank: usize, value: &T) -> Result<Vec<u8>, CollectiveError> {
    postcard::to_allocvec(value).map_err(|e| CollectiveError::Encode {
        rank,
        detail: e.to_string(),
    })
}

fn decode<T: DeserializeOwned>(rank: usize, peer: usize, b: &[u8]) -> Result<T, CollectiveError> {
    postcard::from_bytes(b).map_err(|e| CollectiveError::Decode {
        rank,
        peer,
        detail: e.to_string(),
    })
}

/// Decodes the concatenated encodings `data` (rank `i`'s is `counts[i]` bytes long).
fn decode_all<T: DeserializeOwned>(
    rank: usize,
    data: &[u8],
    counts: &[usize],
) -> Result<Vec<T>, CollectiveError> {
    let mut rest = data;
    counts
        .iter()
        .enumerate()
        .map(|(peer, &c)| {
            let (one, tail) = rest.split_at(c);
            rest = tail;
            decode(rank, peer, one)
        })
        .collect()
}

/// Broadcasts the root's value.
pub(crate) fn bcast_value<C: PointToPoint + ?Sized, T: Serialize + DeserializeOwned>(
    comm: &C,
    root: usize,
    value: Option<T>,
) -> Result<T, C::Error> {
    let r = comm.rank();
    check_root(root, comm.size())?;
    if r == root {
        let value = value
            .ok_or_else(|| CollectiveError::arg("bcast_value", r, "the root must pass a value"))?;
        bcast::bcast_var(comm, root, Some(encode(r, &value)?))?;
        Ok(value)
    } else {
        let data = bcast::bcast_var(comm, root, None)?;
        Ok(decode(r, root, &data)?)
    }
}

/// Gathers every rank's value to the root, in rank order.
pub(crate) fn gather_value<C: PointToPoint + ?Sized, T: Serialize + DeserializeOwned>(
    comm: &C,
    root: usize,
    value: &T,
) -> Result<Option<Vec<T>>, C::Error> {
    let r = comm.rank();
    check_root(root, comm.size())?;
    let w = Ctx::new(comm, Header::new(OpCode::GatherValue, 0, 1, Some(root), 0));
    match gather::gatherv_in(&w, root, &encode(r, value)?)? {
        Some((data, counts)) => Ok(Some(decode_all(r, &data, &counts)?)),
        None => Ok(None),
    }
}

/// Scatters the root's values, one per rank in rank order (a scatterv of their encodings).
pub(crate) fn scatter_value<C: PointToPoint + ?Sized, T: Serialize + DeserializeOwned>(
    comm: &C,
    root: usize,
    values: Option<&[T]>,
) -> Result<T, C::Error> {
    let (r, p) = (comm.rank(), comm.size());
    check_root(root, p)?;
    let data = if r == root {
        let values = values.ok_or_else(|| {
            CollectiveError::arg("scatter_value", r, "the root must pass the values")
        })?;
        if values.len() != p {
            return Err(CollectiveError::arg(
                "scatter_value",
                r,
                format!("the root passed {} values for {p} ranks", values.len()),
            )
            .into());
        }
        let mut data = Vec::new();
        let mut counts = Vec::with_capacity(p);
        for v in values {
            let one = encode(r, v)?;
            counts.push(one.len());
            data.extend_from_slice(&one);
        }
        scatter::scatterv(comm, root, Some((&data[..], &counts[..])))?
    } else {
        scatter::scatterv::<C, u8>(comm, root, None)?
    };
    Ok(decode(r, root, &data)?)
}

/// Gathers every rank's value on every rank, in rank order.
pub(crate) fn allgather_value<C: PointToPoint + ?Sized, T: Serialize + DeserializeOwned>(
    comm: &C,
    value: &T,
) -> Result<Vec<T>, C::Error> {
    let r = comm.rank();
    let (data, counts) =
        allgather::allgatherv(comm, OpCode::AllgatherValue, &encode(r, value)?, None)?;
    Ok(decode_all(r, &data, &counts)?)
}
