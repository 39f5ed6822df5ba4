//! Geo commands: GEOADD, GEODIST, GEOHASH, GEOPOS, GEORADIUS,
//! GEORADIUSBYMEMBER (and their `_RO` forms), GEOSEARCH and
//! GEOSEARCHSTORE.
//!
//! A geo key is an ordinary sorted set (`crdt::zset`) whose scores are
//! Redis's 52-bit geohash cell codes (`geohash`), so ZRANGE/ZSCORE of a geo
//! key show exactly Redis's numbers and every sorted-set command works on
//! it. Replication needs nothing new: a GEOADD is a ZADD (LWW score per
//! member, add-wins members) and the `STORE` forms are a `*STORE`
//! overwrite of the destination (docs/semantics.md).

use std::ops::Bound;

use bytes::Bytes;

use super::args::{err, err_owned, int, is, strict_float, text, Args, CmdResult, SYNTAX_ERROR};
use super::flags::{DENYOOM, MOVABLEKEYS, READONLY, WRITE};
use super::geohash::{self, Search, Shape};
use super::typed::{self, read};
use super::zsets::{zadd_generic, ZaddFlags};
use super::{spec, CommandSpec, Context};
use crate::crdt::zset::ZSet;
use crate::protocol::Reply;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("geoadd", -5, WRITE | DENYOOM, (1, 1, 1), "geo", "3.2.0", "Adds points (longitude, latitude, member) to a geospatial index, a sorted set scored by geohash.", geoadd),
    spec("geodist", -4, READONLY, (1, 1, 1), "geo", "3.2.0", "Returns the distance between two members of a geospatial index.", geodist),
    spec("geohash", -2, READONLY, (1, 1, 1), "geo", "3.2.0", "Returns members' positions as standard geohash strings.", geohash_command),
    spec("geopos", -2, READONLY, (1, 1, 1), "geo", "3.2.0", "Returns the longitude and latitude of members of a geospatial index.", geopos),
    spec("georadius", -6, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), "geo", "3.2.0", "Finds members within a radius of a point, optionally storing them in a key.", georadius),
    spec("georadiusbymember", -5, WRITE | DENYOOM | MOVABLEKEYS, (1, 1, 1), "geo", "3.2.0", "Finds members within a radius of a member, optionally storing them in a key.", georadiusbymember),
    spec("georadius_ro", -6, READONLY, (1, 1, 1), "geo", "3.2.10", "Finds members within a radius of a point (read-only form).", georadius_ro),
    spec("georadiusbymember_ro", -5, READONLY, (1, 1, 1), "geo", "3.2.10", "Finds members within a radius of a member (read-only form).", georadiusbymember_ro),
    spec("geosearch", -7, READONLY, (1, 1, 1), "geo", "6.2.0", "Finds members inside a circle or a box around a point or a member.", geosearch),
    spec("geosearchstore", -8, WRITE | DENYOOM, (1, 2, 1), "geo", "6.2.0", "Stores the members inside a circle or a box around a point or a member in a key.", geosearchstore),
];

const UNSUPPORTED_UNIT: &str = "ERR unsupported unit provided. please use M, KM, FT, MI";
const MEMBER_NOT_DECODABLE: &str = "ERR could not decode requested zset member";

// ----- argument helpers -----

/// `longitude latitude`, each a float, together inside Redis's limits.
fn long_lat(args: &mut Args) -> Result<(f64, f64), Reply> {
    let longitude = args.float()?;
    let latitude = args.float()?;
    let outside = !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&longitude)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&latitude);
    if outside {
        return Err(err_owned(format!(
            "ERR invalid longitude,latitude pair {longitude:.6},{latitude:.6}"
        )));
    }
    Ok((longitude, latitude))
}

/// A unit's size in metres.
fn unit(arg: &[u8]) -> Result<f64, Reply> {
    [("m", 1.0), ("km", 1000.0), ("ft", 0.3048), ("mi", 1609.34)]
        .iter()
        .find(|(name, _)| is(arg, name))
        .map(|&(_, meters)| meters)
        .ok_or_else(|| err(UNSUPPORTED_UNIT))
}

/// A non-negative float, `missing` when the argument is not a number.
fn measure(args: &mut Args, missing: &'static str) -> Result<f64, Reply> {
    strict_float(args.next()?).ok_or_else(|| err(missing))
}

/// `radius unit`: the radius (in the unit) and the unit's size in metres.
fn radius_and_unit(args: &mut Args) -> Result<(Shape, f64), Reply> {
    let radius = measure(args, "ERR need numeric radius")?;
    if radius < 0.0 {
        return Err(err("ERR radius cannot be negative"));
    }
    Ok((Shape::Radius(radius), unit(args.next()?)?))
}

/// `width height unit`.
fn box_and_unit(args: &mut Args) -> Result<(Shape, f64), Reply> {
    let width = measure(args, "ERR need numeric width")?;
    let height = measure(args, "ERR need numeric height")?;
    if height < 0.0 || width < 0.0 {
        return Err(err("ERR height or width cannot be negative"));
    }
    Ok((Shape::Box { width, height }, unit(args.next()?)?))
}

/// The point a member of a geo set stands for.
fn member_point(z: &ZSet, member: &[u8]) -> Result<(f64, f64), Reply> {
    z.score(member)
        .and_then(geohash::point_of_score)
        .ok_or_else(|| err(MEMBER_NOT_DECODABLE))
}

fn coordinates(longitude: f64, latitude: f64) -> Reply {
    let text = |v: f64| Reply::FormattedDouble(Bytes::from(geohash::coordinate_text(v)));
    Reply::Array(vec![text(longitude), text(latitude)])
}

// ----- GEOADD and the point reads -----

/// `GEOADD key [NX|XX] [CH] longitude latitude member [...]`: the points
/// become a ZADD of their geohash scores.
fn geoadd(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let mut flags = ZaddFlags::default();
    loop {
        if args.keyword("nx") {
            flags.nx = true;
        } else if args.keyword("xx") {
            flags.xx = true;
        } else if args.keyword("ch") {
            flags.ch = true;
        } else {
            break;
        }
    }
    let left = args.remaining();
    if left == 0 || !left.is_multiple_of(3) || (flags.nx && flags.xx) {
        return Err(err(SYNTAX_ERROR));
    }
    let mut pairs: Vec<(f64, &Bytes)> = Vec::with_capacity(left / 3);
    while !args.is_done() {
        let (longitude, latitude) = long_lat(args)?;
        // Every pair `long_lat` accepts has a cell; the error is never sent.
        let score = geohash::score_of(longitude, latitude).ok_or_else(|| err(SYNTAX_ERROR))?;
        pairs.push((score as f64, args.next()?));
    }
    zadd_generic(ctx, key, &flags, &pairs)
}

/// `GEODIST key member1 member2 [unit]`: nil when either is missing.
fn geodist(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let (first, second) = (args.next()?, args.next()?);
    let to_meters = match args.next_if_any() {
        None => 1.0,
        Some(u) => {
            args.finish()?;
            unit(u)?
        }
    };
    let Some(z) = read::<ZSet>(ctx, key)? else {
        return Ok(Reply::Nil);
    };
    let points = z
        .score(first)
        .and_then(geohash::point_of_score)
        .zip(z.score(second).and_then(geohash::point_of_score));
    Ok(match points {
        None => Reply::Nil,
        Some(((lon1, lat1), (lon2, lat2))) => {
            let meters = geohash::distance(lon1, lat1, lon2, lat2);
            Reply::Bulk(Bytes::from(geohash::distance_text(meters / to_meters)))
        }
    })
}

/// `GEOHASH key member [...]`: standard 11-character geohashes.
fn geohash_command(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let members = args.rest();
    let z = read::<ZSet>(ctx, key)?;
    Ok(Reply::Array(
        members
            .iter()
            .map(|m| {
                z.and_then(|z| z.score(m))
                    .and_then(geohash::geohash_text)
                    .map_or(Reply::Nil, |text| {
                        Reply::Bulk(Bytes::copy_from_slice(&text))
                    })
            })
            .collect(),
    ))
}

/// `GEOPOS key member [...]`: `[longitude, latitude]` or a nil array.
fn geopos(ctx: &mut Context, args: &mut Args) -> CmdResult {
    let key = args.key()?;
    let members = args.rest();
    let z = read::<ZSet>(ctx, key)?;
    Ok(Reply::Array(
        members
            .iter()
            .map(|m| {
                z.and_then(|z| z.score(m))
                    .and_then(geohash::point_of_score)
                    .map_or(Reply::NilArray, |(lon, lat)| coordinates(lon, lat))
            })
            .collect(),
    ))
}

// ----- the searches -----

/// Which command is searching: it decides how the centre and shape are
/// given and whether results may be stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS: `key longitude latitude radius unit`.
    RadiusFromPoint { store_allowed: bool },
    /// GEORADIUSBYMEMBER: `key member radius unit`.
    RadiusFromMember { store_allowed: bool },
    /// GEOSEARCH: `key` and FROM…/BY… options.
    Search,
    /// GEOSEARCHSTORE: `destination key` and FROM…/BY… options.
    SearchStore,
}

impl Form {
    fn is_search(self) -> bool {
        matches!(self, Form::Search | Form::SearchStore)
    }

    fn store_option_allowed(self) -> bool {
        matches!(
            self,
            Form::RadiusFromPoint {
                store_allowed: true
            } | Form::RadiusFromMember {
                store_allowed: true
            }
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Unsorted,
    Ascending,
    Descending,
}

/// One member found by a search.
struct Found {
    member: Box<[u8]>,
    score: f64,
    longitude: f64,
    latitude: f64,
    /// From the centre, metres (in the request's unit once replied).
    distance: f64,
}

/// Every member inside the search, in Redis's scan order: cell by cell
/// (`geohash::search_cells`), ascending score within a cell, stopping
/// once `limit` (COUNT … ANY) members are found.
fn find_members(z: &ZSet, search: &Search, limit: usize) -> Vec<Found> {
    let cells = geohash::search_cells(search);
    let mut found: Vec<Found> = Vec::new();
    let enough = |found: &Vec<Found>| limit != 0 && found.len() >= limit;
    let mut last_scanned: Option<usize> = None;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_none() {
            continue;
        }
        // Huge searches make neighbours coincide; Redis skips a cell equal
        // to the last one scanned (unless that was the centre cell).
        if last_scanned.is_some_and(|last| last != 0 && cells[last] == *cell) {
            continue;
        }
        if enough(&found) {
            break;
        }
        let (min, max) = geohash::score_span(*cell);
        let scores = z.score_range(Bound::Included(min as f64), Bound::Excluded(max as f64));
        for (member, score) in scores {
            if let Some((longitude, latitude)) = geohash::point_of_score(score) {
                if let Some(distance) = geohash::distance_if_within(search, longitude, latitude) {
                    found.push(Found {
                        member: member.into(),
                        score,
                        longitude,
                        latitude,
                        distance,
                    });
                }
            }
            if enough(&found) {
                break;
            }
        }
        last_scanned = Some(i);
    }
    found
}

/// What a search request asked for, once its arguments are read.
struct Request<'a> {
    search: Option<Search>,
    order: Order,
    /// 0: no COUNT.
    count: usize,
    any: bool,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    store: Option<&'a Bytes>,
    store_dist: bool,
}

/// Reads a search's centre, shape and options in Redis's order (so the
/// first bad argument is the one reported), then checks the combinations.
/// `z` is the source set, when it exists: a FROMMEMBER centre is looked up
/// as it is read.
fn parse_request<'a>(
    args: &mut Args<'a>,
    form: Form,
    z: Option<&ZSet>,
    store: Option<&'a Bytes>,
) -> Result<Request<'a>, Reply> {
    let mut centre: Option<(f64, f64)> = None;
    let mut shape: Option<(Shape, f64)> = None;
    match form {
        Form::RadiusFromPoint { .. } => {
            centre = Some(long_lat(args)?);
            shape = Some(radius_and_unit(args)?);
        }
        Form::RadiusFromMember { .. } => match z {
            // Nothing to search: the arguments are only skipped, and the
            // reply is decided by whether a STORE option follows.
            None => {
                args.take(3)?;
            }
            Some(z) => {
                centre = Some(member_point(z, args.next()?)?);
                shape = Some(radius_and_unit(args)?);
            }
        },
        Form::Search | Form::SearchStore => {}
    }
    let mut request = Request {
        search: None,
        order: Order::Unsorted,
        count: 0,
        any: false,
        with_dist: false,
        with_hash: false,
        with_coord: false,
        store,
        store_dist: false,
    };
    let (mut from_member, mut from_point, mut by_radius, mut by_box) = (false, false, false, false);
    while let Some(option) = args.next_if_any() {
        let left = args.remaining();
        if is(option, "withdist") {
            request.with_dist = true;
        } else if is(option, "withhash") {
            request.with_hash = true;
        } else if is(option, "withcoord") {
            request.with_coord = true;
        } else if is(option, "any") {
            request.any = true;
        } else if is(option, "asc") {
            request.order = Order::Ascending;
        } else if is(option, "desc") {
            request.order = Order::Descending;
        } else if is(option, "count") && left >= 1 {
            let count = int(args.next()?)?;
            if count <= 0 {
                return Err(err("ERR COUNT must be > 0"));
            }
            request.count = usize::try_from(count).unwrap_or(usize::MAX);
        } else if (is(option, "store") || is(option, "storedist"))
            && left >= 1
            && form.store_option_allowed()
        {
            request.store = Some(args.next()?);
            request.store_dist = is(option, "storedist");
        } else if is(option, "storedist") && form == Form::SearchStore {
            request.store_dist = true;
        } else if is(option, "frommember") && left >= 1 && form.is_search() && !from_point {
            let member = args.next()?;
            if let Some(z) = z {
                centre = Some(member_point(z, member)?);
            }
            from_member = true;
        } else if is(option, "fromlonlat") && left >= 2 && form.is_search() && !from_member {
            centre = Some(long_lat(args)?);
            from_point = true;
        } else if is(option, "byradius") && left >= 2 && form.is_search() && !by_box {
            shape = Some(radius_and_unit(args)?);
            by_radius = true;
        } else if is(option, "bybox") && left >= 3 && form.is_search() && !by_radius {
            shape = Some(box_and_unit(args)?);
            by_box = true;
        } else {
            return Err(err(SYNTAX_ERROR));
        }
    }
    if request.store.is_some() && (request.with_dist || request.with_hash || request.with_coord) {
        let who = if form == Form::SearchStore {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(err_owned(format!(
            "ERR {who} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    if form.is_search() && !(from_member || from_point) {
        return Err(err_owned(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            text(args.name())
        )));
    }
    if form.is_search() && !(by_radius || by_box) {
        return Err(err_owned(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            text(args.name())
        )));
    }
    if request.any && request.count == 0 {
        return Err(err("ERR the ANY argument requires COUNT argument"));
    }
    if let (Some((longitude, latitude)), Some((shape, to_meters))) = (centre, shape) {
        request.search = Some(Search {
            longitude,
            latitude,
            shape,
            to_meters,
        });
    }
    Ok(request)
}

/// The shared body of every search command.
fn search_command(ctx: &mut Context, args: &mut Args, form: Form) -> CmdResult {
    let destination = if form == Form::SearchStore {
        Some(args.key()?)
    } else {
        None
    };
    let source = args.key()?;
    let z = read::<ZSet>(ctx, source)?;
    let request = parse_request(args, form, z, destination)?;
    let (Some(z), Some(search)) = (z, request.search) else {
        // No source set: an empty reply, or an emptied destination.
        return Ok(match request.store {
            Some(destination) => {
                store(ctx, destination, Vec::new());
                Reply::Integer(0)
            }
            None => Reply::Array(Vec::new()),
        });
    };
    let limit = if request.any { request.count } else { 0 };
    let mut found = find_members(z, &search, limit);
    // COUNT wants the nearest ones, unless ANY said any will do.
    let order = match request.order {
        Order::Unsorted if request.count != 0 && !request.any => Order::Ascending,
        order => order,
    };
    match order {
        Order::Unsorted => {}
        Order::Ascending => found.sort_by(|a, b| a.distance.total_cmp(&b.distance)),
        Order::Descending => found.sort_by(|a, b| b.distance.total_cmp(&a.distance)),
    }
    if request.count != 0 {
        found.truncate(request.count);
    }
    for f in &mut found {
        f.distance /= search.to_meters;
    }
    if let Some(destination) = request.store {
        let n = found.len() as i64;
        let scored = found
            .into_iter()
            .map(|f| {
                let score = if request.store_dist {
                    f.distance
                } else {
                    f.score
                };
                (f.member, score)
            })
            .collect();
        store(ctx, destination, scored);
        return Ok(Reply::Integer(n));
    }
    let extras = [request.with_dist, request.with_hash, request.with_coord];
    let with_any = extras.contains(&true);
    let reply = found
        .into_iter()
        .map(|f| {
            let member = Reply::Bulk(Bytes::from(f.member));
            if !with_any {
                return member;
            }
            let mut item = vec![member];
            if request.with_dist {
                item.push(Reply::Bulk(Bytes::from(geohash::distance_text(f.distance))));
            }
            if request.with_hash {
                item.push(Reply::Integer(f.score as i64));
            }
            if request.with_coord {
                item.push(coordinates(f.longitude, f.latitude));
            }
            Reply::Array(item)
        })
        .collect();
    Ok(Reply::Array(reply))
}

/// Replaces `destination` with the found members (deleting it when there
/// are none), as the sorted-set `*STORE` commands do.
fn store(ctx: &mut Context, destination: &[u8], scored: Vec<(Box<[u8]>, f64)>) {
    typed::overwrite::<ZSet>(ctx, destination, |ts, next_dot| {
        ZSet::delta_build(scored, ts, next_dot)
    });
}

fn georadius(ctx: &mut Context, args: &mut Args) -> CmdResult {
    search_command(
        ctx,
        args,
        Form::RadiusFromPoint {
            store_allowed: true,
        },
    )
}

fn georadius_ro(ctx: &mut Context, args: &mut Args) -> CmdResult {
    search_command(
        ctx,
        args,
        Form::RadiusFromPoint {
            store_allowed: false,
        },
    )
}

fn georadiusbymember(ctx: &mut Context, args: &mut Args) -> CmdResult {
    search_command(
        ctx,
        args,
        Form::RadiusFromMember {
            store_allowed: true,
        },
    )
}

fn georadiusbymember_ro(ctx: &mut Context, args: &mut Args) -> CmdResult {
    search_command(
        ctx,
        args,
        Form::RadiusFromMember {
            store_allowed: false,
        },
    )
}

fn geosearch(ctx: &mut Context, args: &mut Args) -> CmdResult {
    search_command(ctx, args, Form::Search)
}

fn geosearchstore(ctx: &mut Context, args: &mut Args) -> CmdResult {
    search_command(ctx, args, Form::SearchStore)
}
