//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST, with
//! Redis's element hash (MurmurHash64A, seed 0xadc83b19) and its 7.0
//! cardinality estimator (Ertl's "new cardinality estimation" with tau and
//! sigma), so the same elements give Redis's registers, bytes and counts.
//!
//! Values are string keys in Redis's byte layout (`crdt::hll`); a write
//! stores the whole value it produced as a HyperLogLog write, which
//! concurrent HyperLogLog writes in other regions merge with register-wise
//! (docs/semantics.md). PFCOUNT on one key stores the cardinality it
//! computed in the header, as Redis does; that cache update replicates like
//! any write, so every region holds the same bytes.

use bytes::Bytes;

use super::args::{err, err_owned, Args, CmdResult, WRONGTYPE};
use super::flags::{ADMIN, DENYOOM, FAST, READONLY, WRITE};
use super::{spec, CommandSpec, Context};
use crate::crdt::hll::{Hll, DEFAULT_SPARSE_MAX, REGISTERS, REGISTER_MAX};
use crate::crdt::KeyState;
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("pfadd", -2, WRITE | DENYOOM | FAST, (1, 1, 1), "hyperloglog", "2.8.9", "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.", pfadd),
    spec("pfcount", -2, READONLY, (1, -1, 1), "hyperloglog", "2.8.9", "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).", pfcount),
    spec("pfmerge", -2, WRITE | DENYOOM, (1, -1, 1), "hyperloglog", "2.8.9", "Merges one or more HyperLogLog values into a single key.", pfmerge),
    spec("pfdebug", 3, WRITE | DENYOOM | ADMIN, (2, 2, 1), "hyperloglog", "2.8.9", "Internal commands for debugging HyperLogLog values.", pfdebug),
    spec("pfselftest", 1, ADMIN, (0, 0, 0), "hyperloglog", "2.8.9", "An internal command for testing HyperLogLog values.", pfselftest),
];

const NOT_AN_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";
const HASH_SEED: u64 = 0xadc83b19;

/// MurmurHash64A as Redis uses it: 8-byte blocks read little-endian on
/// every platform.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4a7935bd1e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut k = u64::from_le_bytes(block.try_into().expect("8-byte block"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element lands in and the length of its `0…01` run
/// (1 to 51): the low 14 hash bits pick the register, the rest give the run.
pub fn register_of(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, HASH_SEED);
    let index = (hash as usize) & (REGISTERS - 1);
    // The bit above the 50 used ones stops the count at 51.
    let rest = (hash >> 14) | (1 << 50);
    (index, rest.trailing_zeros() as u8 + 1)
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

/// Redis 7.0's estimate from the register histogram.
pub fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    const Q: usize = 50;
    let mut z = m * tau((m - f64::from(histo[Q + 1])) / m);
    for j in (1..=Q).rev() {
        z += f64::from(histo[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histo[0]) / m);
    // 0.5/ln(2): the estimator's constant for m → ∞.
    const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
    (ALPHA_INF * m * m / z).round() as u64
}

/// The cardinality of `hll`, or `Corrupt` when its registers do not add
/// up.
fn count(hll: &Hll) -> Result<u64, Reply> {
    hll.histogram()
        .map(|h| estimate(&h))
        .map_err(|_| err(CORRUPT))
}

fn sparse_max(ctx: &Context) -> usize {
    (ctx.server.config.read())
        .get("hll-sparse-max-bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SPARSE_MAX)
}

/// The key's HyperLogLog (`None` when absent): WRONGTYPE for a
/// collection, Redis's "not a valid HyperLogLog" for other strings.
fn hll_of(state: Option<&KeyState>) -> Result<Option<Hll>, Reply> {
    let Some(state) = state else {
        return Ok(None);
    };
    if state.is_collection() {
        return Err(err(WRONGTYPE));
    }
    let Some(value) = state.string_value() else {
        return Ok(None);
    };
    Hll::from_bytes(&value.to_bytes())
        .map(Some)
        .ok_or_else(|| err(NOT_AN_HLL))
}

fn read_hll(ctx: &mut Context, key: &[u8]) -> Result<Option<Hll>, Reply> {
    let db = ctx.client.db;
    hll_of(ctx.store.lookup_read(db, key))
}

/// Stores `hll` as the key's value (a HyperLogLog write).
fn write_hll(ctx: &mut Context, key: &[u8], hll: Hll) {
    let db = ctx.client.db;
    let bytes = hll.into_bytes();
    ctx.store.write_key(db, key, |state, w| {
        let ts = w.ts();
        (state.delta_hll(bytes, ts, &mut || w.next_dot()), ())
    });
}

fn pfadd(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let elements = args.rest();
    let db = ctx.client.db;
    let (mut hll, mut updated) = match hll_of(ctx.store.lookup(db, key))? {
        Some(hll) => (hll, false),
        None => (Hll::new(), true),
    };
    let limit = sparse_max(ctx);
    for element in elements {
        let (index, run) = register_of(element);
        updated |= hll.raise(index, run, limit).map_err(|_| err(CORRUPT))?;
    }
    if !updated {
        return Ok(Reply::Integer(0));
    }
    hll.invalidate_cache();
    write_hll(ctx, key, hll);
    Ok(Reply::Integer(1))
}

fn pfcount(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let keys = args.rest();
    if let [key] = keys {
        let Some(mut hll) = read_hll(ctx, key)? else {
            return Ok(Reply::Integer(0));
        };
        if let Some(card) = hll.cached_cardinality() {
            return Ok(Reply::Integer(card as i64));
        }
        let card = count(&hll)?;
        hll.set_cached_cardinality(card);
        write_hll(ctx, key, hll);
        return Ok(Reply::Integer(card as i64));
    }
    let mut max = vec![0u8; REGISTERS];
    for key in keys {
        if let Some(hll) = read_hll(ctx, key)? {
            hll.max_into(&mut max).map_err(|_| err(CORRUPT))?;
        }
    }
    let mut histo = [0u32; 64];
    for &r in &max {
        histo[usize::from(r)] += 1;
    }
    Ok(Reply::Integer(estimate(&histo) as i64))
}

fn pfmerge(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let keys = args.rest();
    let mut max = vec![0u8; REGISTERS];
    let mut any_dense = false;
    // The destination is the first source, as in Redis.
    for key in keys {
        if let Some(hll) = read_hll(ctx, key)? {
            any_dense |= !hll.is_sparse();
            hll.max_into(&mut max).map_err(|_| err(CORRUPT))?;
        }
    }
    let dest = &keys[0];
    let db = ctx.client.db;
    let mut hll = hll_of(ctx.store.lookup(db, dest))?.unwrap_or_default();
    if any_dense {
        hll.to_dense().map_err(|_| err(CORRUPT))?;
    }
    let limit = sparse_max(ctx);
    for (index, &value) in max.iter().enumerate() {
        if value != 0 {
            // Redis ignores a failed set here: its input was checked above.
            let _ = hll.raise(index, value, limit);
        }
    }
    hll.invalidate_cache();
    write_hll(ctx, dest, hll);
    Ok(Reply::ok())
}

fn pfdebug(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let subcommand = args.next()?;
    let key = args.key()?;
    let db = ctx.client.db;
    let Some(mut hll) = hll_of(ctx.store.lookup(db, key))? else {
        return Err(err("ERR The specified key does not exist"));
    };
    let word = subcommand.to_ascii_lowercase();
    match word.as_slice() {
        b"getreg" => {
            if hll.is_sparse() {
                hll.to_dense().map_err(|_| err(CORRUPT))?;
                write_hll(ctx, key, hll.clone());
            }
            let registers = hll.registers().map_err(|_| err(CORRUPT))?;
            Ok(Reply::Array(
                registers
                    .into_iter()
                    .map(|r| Reply::Integer(i64::from(r)))
                    .collect(),
            ))
        }
        b"decode" => {
            if !hll.is_sparse() {
                return Err(err("ERR HLL encoding is not sparse"));
            }
            Ok(Reply::Bulk(Bytes::from(hll.decode_sparse())))
        }
        b"encoding" => Ok(Reply::simple(if hll.is_sparse() {
            "sparse"
        } else {
            "dense"
        })),
        b"todense" => {
            if !hll.is_sparse() {
                return Ok(Reply::Integer(0));
            }
            hll.to_dense().map_err(|_| err(CORRUPT))?;
            write_hll(ctx, key, hll);
            Ok(Reply::Integer(1))
        }
        _ => Err(err_owned(format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(subcommand)
        ))),
    }
}

/// A small deterministic generator for the self test's inputs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
}

/// PFSELFTEST as Redis runs it: register packing round trips, then ten
/// million elements into a dense and a sparse value that must agree and
/// stay within the expected error at every power of ten.
fn pfselftest(ctx: &mut Context, _args: &mut Args) -> CmdResult {
    let mut rng = SplitMix(ctx.store.now_ms());
    let limit = sparse_max(ctx);
    let mut dense = Hll::new_dense();
    for _ in 0..1000 {
        let expected: Vec<u8> = (0..REGISTERS)
            .map(|_| (rng.next() as u8) & REGISTER_MAX)
            .collect();
        let mut packed = Hll::new_dense();
        for (i, &r) in expected.iter().enumerate() {
            packed.set_register(i, r);
        }
        let got = packed.registers().map_err(|_| err(CORRUPT))?;
        if let Some(i) = (0..REGISTERS).find(|&i| got[i] != expected[i]) {
            return Err(err_owned(format!(
                "TESTFAILED Register {i} should be {} but is {}",
                expected[i], got[i]
            )));
        }
    }
    let mut sparse = Hll::new();
    let relative_error = 1.04 / (REGISTERS as f64).sqrt();
    let seed = rng.next();
    let mut checkpoint: u64 = 1;
    for j in 1..=10_000_000u64 {
        let element = (j ^ seed).to_le_bytes();
        let (index, run) = register_of(&element);
        let _ = dense.raise(index, run, limit);
        sparse.raise(index, run, limit).map_err(|_| err(CORRUPT))?;
        if j != checkpoint {
            continue;
        }
        if (j as usize) < limit / 2 && !sparse.is_sparse() {
            return Err(err("TESTFAILED sparse encoding not used"));
        }
        let dense_count = count(&dense)?;
        if dense_count != count(&sparse)? {
            return Err(err("TESTFAILED dense/sparse disagree"));
        }
        let abs_error = (checkpoint as i64 - dense_count as i64).unsigned_abs();
        let max_error = if j == 10 {
            1
        } else {
            (relative_error * 6.0 * checkpoint as f64).ceil() as u64
        };
        if abs_error > max_error {
            return Err(err_owned(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{abs_error}"
            )));
        }
        checkpoint *= 10;
    }
    Ok(Reply::ok())
}
