//! Redis's geohash arithmetic, for the geo commands (`geo`): the 52-bit
//! interleaved cell code a GEOADD stores as a sorted-set score, decoding a
//! score back to a cell centre, the eight neighbouring cells, the cells a
//! radius or box search has to scan, and the haversine distances on
//! Redis's earth sphere.
//!
//! Every formula follows Redis 7.0's own (its constants, the order of its
//! floating-point operations, its step estimate and edge corrections), so
//! scores, coordinates, distances and the order of unsorted search results
//! come out bit for bit as Redis's. Pure functions, no I/O.

/// Cells are `STEP_MAX` bits per axis: 52 bits of score in all.
pub const STEP_MAX: u8 = 26;
/// The latitude limits of the Web Mercator projection the cells tile.
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
/// Redis's earth radius (the quadratic mean radius of WGS-84), metres.
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
/// Radians per degree, computed as Redis computes it.
const DEG_TO_RAD: f64 = std::f64::consts::PI / 180.0;

fn deg_rad(degrees: f64) -> f64 {
    degrees * DEG_TO_RAD
}

fn rad_deg(radians: f64) -> f64 {
    radians / DEG_TO_RAD
}

/// One coordinate range (`min..max`) a cell code subdivides.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

/// The ranges scores are encoded over (latitude clipped to Mercator's).
pub const WGS84_LONG: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
pub const WGS84_LAT: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// A cell: `step` bits per axis, latitude bits at the even positions and
/// longitude bits at the odd ones. `step == 0 && bits == 0` is "no cell"
/// (a neighbour the search leaves out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Cell {
    pub bits: u64,
    pub step: u8,
}

impl Cell {
    pub fn is_none(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

/// A cell's extent in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Area {
    pub longitude: Range,
    pub latitude: Range,
}

/// Spreads the low 32 bits of `value` to the even bit positions.
fn spread(value: u32) -> u64 {
    let mut v = value as u64;
    v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
    v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
    v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    v = (v | (v << 2)) & 0x3333_3333_3333_3333;
    (v | (v << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bit positions of `value` into 32 bits.
fn gather(value: u64) -> u32 {
    let mut v = value & 0x5555_5555_5555_5555;
    v = (v | (v >> 1)) & 0x3333_3333_3333_3333;
    v = (v | (v >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF;
    v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
    ((v | (v >> 16)) & 0x0000_0000_FFFF_FFFF) as u32
}

/// The cell of `step` bits per axis holding the point, over the given
/// ranges; `None` outside them (or outside the WGS-84 limits, which Redis
/// checks whatever the ranges).
pub fn encode(long: Range, lat: Range, longitude: f64, latitude: f64, step: u8) -> Option<Cell> {
    if step == 0 || step > 32 {
        return None;
    }
    let outside = |v: f64, r: Range| v < r.min || v > r.max;
    if outside(longitude, WGS84_LONG)
        || outside(latitude, WGS84_LAT)
        || outside(longitude, long)
        || outside(latitude, lat)
    {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (latitude - lat.min) / (lat.max - lat.min) * scale;
    let long_offset = (longitude - long.min) / (long.max - long.min) * scale;
    // Truncating float-to-integer conversions, as Redis's.
    let bits = spread(lat_offset as u32) | (spread(long_offset as u32) << 1);
    Some(Cell { bits, step })
}

/// [`encode`] over the WGS-84 ranges.
pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<Cell> {
    encode(WGS84_LONG, WGS84_LAT, longitude, latitude, step)
}

/// The extent of a cell over the given ranges (`None` for "no cell").
pub fn decode(long: Range, lat: Range, cell: Cell) -> Option<Area> {
    if cell.is_none() {
        return None;
    }
    let lat_cell = gather(cell.bits) as f64;
    let long_cell = gather(cell.bits >> 1) as f64;
    let cells = (1u64 << cell.step) as f64;
    let lat_scale = lat.max - lat.min;
    let long_scale = long.max - long.min;
    Some(Area {
        latitude: Range {
            min: lat.min + (lat_cell / cells) * lat_scale,
            max: lat.min + ((lat_cell + 1.0) / cells) * lat_scale,
        },
        longitude: Range {
            min: long.min + (long_cell / cells) * long_scale,
            max: long.min + ((long_cell + 1.0) / cells) * long_scale,
        },
    })
}

/// [`decode`] over the WGS-84 ranges.
pub fn decode_wgs84(cell: Cell) -> Option<Area> {
    decode(WGS84_LONG, WGS84_LAT, cell)
}

/// A cell's centre as `(longitude, latitude)`, clamped to the limits.
fn centre(area: &Area) -> (f64, f64) {
    let longitude = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let latitude = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (longitude, latitude)
}

/// The sorted-set score of a point: its finest cell, as a 52-bit integer.
pub fn score_of(longitude: f64, latitude: f64) -> Option<u64> {
    encode_wgs84(longitude, latitude, STEP_MAX).map(align52)
}

/// The `(longitude, latitude)` a score stands for (its cell's centre).
/// Scores that are not geo codes (a ZADD can put any score on a member)
/// still decode to some point, the one Redis shows.
pub fn point_of_score(score: f64) -> Option<(f64, f64)> {
    let cell = Cell {
        bits: score_bits(score),
        step: STEP_MAX,
    };
    decode_wgs84(cell).map(|area| centre(&area))
}

/// A score as a cell code, converted the way Redis's `(uint64_t)` cast
/// turns out on x86-64 for any double, also those C leaves undefined
/// (negative, 2^64 and above, infinite), so a non-geo score decodes to
/// the point Redis reports for it.
fn score_bits(score: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    // The processor's answer for a double that fits no i64.
    const INDEFINITE: u64 = 1 << 63;
    let truncate = |x: f64| {
        if x.is_nan() || !(-TWO_63..TWO_63).contains(&x) {
            INDEFINITE
        } else {
            x as i64 as u64
        }
    };
    if score >= TWO_63 {
        truncate(score - TWO_63) ^ INDEFINITE
    } else {
        truncate(score)
    }
}

/// A cell's code shifted to the 52-bit score scale.
pub fn align52(cell: Cell) -> u64 {
    cell.bits << (52 - 2 * cell.step as u32)
}

/// The scores `[min, max)` that lie inside `cell`.
pub fn score_span(cell: Cell) -> (u64, u64) {
    let next = Cell {
        bits: cell.bits.wrapping_add(1),
        step: cell.step,
    };
    (align52(cell), align52(next))
}

/// The 11-character base-32 geohash of a score, re-encoded over the
/// standard ±90° latitude range (GEOHASH); the 11th character stands for
/// bits a 52-bit score does not have, so it is always `0`.
pub fn geohash_text(score: f64) -> Option<[u8; 11]> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (longitude, latitude) = point_of_score(score)?;
    let standard_lat = Range {
        min: -90.0,
        max: 90.0,
    };
    let bits =
        encode(WGS84_LONG, standard_lat, longitude, latitude, STEP_MAX).map_or(0, |c| c.bits);
    let mut text = [b'0'; 11];
    for (i, ch) in text.iter_mut().enumerate().take(10) {
        let index = (bits >> (52 - (i + 1) * 5)) & 0x1f;
        *ch = ALPHABET[index as usize];
    }
    Some(text)
}

/// Moves a cell one column east (`+1`) or west (`-1`), wrapping around.
fn move_x(cell: &mut Cell, direction: i8) {
    let width = 64 - 2 * cell.step as u32;
    let x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = cell.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> width;
    let x = if direction > 0 {
        x.wrapping_add(zz + 1)
    } else {
        (x | zz).wrapping_sub(zz + 1)
    };
    cell.bits = (x & (0xaaaa_aaaa_aaaa_aaaa >> width)) | y;
}

/// Moves a cell one row north (`+1`) or south (`-1`), wrapping around.
fn move_y(cell: &mut Cell, direction: i8) {
    let width = 64 - 2 * cell.step as u32;
    let x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = cell.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> width;
    let y = if direction > 0 {
        y.wrapping_add(zz + 1)
    } else {
        (y | zz).wrapping_sub(zz + 1)
    };
    cell.bits = x | (y & (0x5555_5555_5555_5555 >> width));
}

fn neighbour(cell: Cell, dx: i8, dy: i8) -> Cell {
    let mut moved = cell;
    if dx != 0 {
        move_x(&mut moved, dx);
    }
    if dy != 0 {
        move_y(&mut moved, dy);
    }
    moved
}

/// The shape a search covers, in metres scaled by `to_meters`.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// A search: its centre, its shape in the request's unit, and the unit's
/// size in metres.
#[derive(Clone, Copy, Debug)]
pub struct Search {
    pub longitude: f64,
    pub latitude: f64,
    pub shape: Shape,
    pub to_meters: f64,
}

/// How many bits per axis the search cells get for a radius (Redis's
/// estimate: cells about as wide as the radius, wider near the poles).
fn steps_for_radius(mut meters: f64, latitude: f64) -> u8 {
    if meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while meters < MERCATOR_MAX {
        meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&latitude) {
        step -= 1;
        if !(-80.0..=80.0).contains(&latitude) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// `[min_long, min_lat, max_long, max_lat]` around the search centre.
fn bounding_box(search: &Search) -> [f64; 4] {
    let (half_width, half_height) = match search.shape {
        Shape::Radius(r) => (r, r),
        Shape::Box { width, height } => (width / 2.0, height / 2.0),
    };
    let height = search.to_meters * half_height;
    let width = search.to_meters * half_width;
    let (longitude, latitude) = (search.longitude, search.latitude);
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
    let long_delta_bottom =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
    // The box is widest on the side nearer the equator.
    let long_delta = if latitude < 0.0 {
        long_delta_bottom
    } else {
        long_delta_top
    };
    [
        longitude - long_delta,
        latitude - lat_delta,
        longitude + long_delta,
        latitude + lat_delta,
    ]
}

/// The cells a search scans, in Redis's order: the centre cell, then
/// north, south, east, west, north-east, north-west, south-east,
/// south-west; a neighbour that cannot hold a match is "no cell".
pub fn search_cells(search: &Search) -> [Cell; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(search);
    let radius_meters = search.to_meters
        * match search.shape {
            Shape::Radius(r) => r,
            Shape::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        };
    let mut steps = steps_for_radius(radius_meters, search.latitude);
    let at = |steps: u8| {
        let cell = encode_wgs84(search.longitude, search.latitude, steps).unwrap_or_default();
        let area = decode_wgs84(cell);
        (cell, area)
    };
    let (mut cell, mut area) = at(steps);
    // Near a cell edge the estimated cells can be too small for the
    // neighbours to cover the whole search: one step coarser then.
    let extent = |dx, dy| decode_wgs84(neighbour(cell, dx, dy));
    let too_small = extent(0, 1).is_some_and(|a| a.latitude.max < max_lat)
        || extent(0, -1).is_some_and(|a| a.latitude.min > min_lat)
        || extent(1, 0).is_some_and(|a| a.longitude.max < max_lon)
        || extent(-1, 0).is_some_and(|a| a.longitude.min > min_lon);
    if steps > 1 && too_small {
        steps -= 1;
        (cell, area) = at(steps);
    }
    let mut cells = [
        cell,
        neighbour(cell, 0, 1),
        neighbour(cell, 0, -1),
        neighbour(cell, 1, 0),
        neighbour(cell, -1, 0),
        neighbour(cell, 1, 1),
        neighbour(cell, -1, 1),
        neighbour(cell, 1, -1),
        neighbour(cell, -1, -1),
    ];
    const NORTH: [usize; 3] = [1, 5, 6];
    const SOUTH: [usize; 3] = [2, 7, 8];
    const EAST: [usize; 3] = [3, 5, 7];
    const WEST: [usize; 3] = [4, 6, 8];
    if let (true, Some(area)) = (steps >= 2, area) {
        // Leave out the neighbours on a side the search does not reach.
        let mut drop = |sides: [usize; 3]| {
            for i in sides {
                cells[i] = Cell::default();
            }
        };
        if area.latitude.min < min_lat {
            drop(SOUTH);
        }
        if area.latitude.max > max_lat {
            drop(NORTH);
        }
        if area.longitude.min < min_lon {
            drop(WEST);
        }
        if area.longitude.max > max_lon {
            drop(EAST);
        }
    }
    cells
}

/// The great-circle distance along a meridian, metres.
fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// The haversine distance between two points, metres.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lon1r = deg_rad(lon1);
    let lon2r = deg_rad(lon2);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_rad(lat1);
    let lat2r = deg_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// The distance (metres) from the search centre to the point, when the
/// point lies inside the search shape.
pub fn distance_if_within(search: &Search, longitude: f64, latitude: f64) -> Option<f64> {
    let (x1, y1) = (search.longitude, search.latitude);
    match search.shape {
        Shape::Radius(r) => {
            let d = distance(x1, y1, longitude, latitude);
            (d <= r * search.to_meters).then_some(d)
        }
        Shape::Box { width, height } => {
            let (width_m, height_m) = (width * search.to_meters, height * search.to_meters);
            if lat_distance(latitude, y1) > height_m / 2.0 {
                return None;
            }
            if distance(longitude, latitude, x1, latitude) > width_m / 2.0 {
                return None;
            }
            Some(distance(x1, y1, longitude, latitude))
        }
    }
}

/// A distance as Redis replies with it: rounded to 4 decimals (half to
/// even, as `llrint`), always with the 4 decimals shown.
pub fn distance_text(value: f64) -> String {
    if value == 0.0 {
        return "0.0000".to_owned();
    }
    let scaled = (value * 10000.0).round_ties_even();
    if !scaled.is_finite() || scaled.abs() >= 9.2e18 {
        // Beyond what Redis's integer rounding can hold; only reachable
        // with absurd units, never with earth distances.
        return format!("{value:.4}");
    }
    let scaled = scaled as i64;
    let sign = if scaled < 0 { "-" } else { "" };
    let magnitude = scaled.unsigned_abs();
    format!("{sign}{}.{:04}", magnitude / 10000, magnitude % 10000)
}

/// A coordinate as Redis prints it: 17 decimals, trailing zeros (and a
/// bare point) dropped, `-0` shown as `0`.
pub fn coordinate_text(value: f64) -> String {
    let mut text = format!("{value:.17}");
    if text.contains('.') {
        let trimmed = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(trimmed);
    }
    if text == "-0" {
        text = "0".to_owned();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_redis_scores() {
        // From Redis's geo unit: GEOADD nyc ... then ZRANGE WITHSCORES.
        assert_eq!(score_of(-74.0131604, 40.7126674), Some(1791873972053020));
        assert_eq!(score_of(-73.9454966, 40.747533), Some(1791875804419201));
        assert_eq!(score_of(-73.7858139, 40.6428986), Some(1791895905559723));
    }

    #[test]
    fn points_outside_the_limits_have_no_score() {
        assert_eq!(score_of(180.1, 0.0), None);
        assert_eq!(score_of(0.0, 85.06), None);
        assert_eq!(score_of(f64::INFINITY, 0.0), None);
    }

    #[test]
    fn geohash_text_matches_the_wikipedia_example() {
        let score = score_of(-5.6, 42.6).unwrap() as f64;
        assert_eq!(&geohash_text(score).unwrap(), b"ezs42e44yx0");
    }

    #[test]
    fn decoding_a_score_lands_near_the_point() {
        let (lon, lat) = point_of_score(score_of(13.361389, 38.115556).unwrap() as f64).unwrap();
        assert_eq!(coordinate_text(lon), "13.36138933897018433");
        assert_eq!(coordinate_text(lat), "38.11555639549629859");
    }

    #[test]
    fn non_geo_scores_decode_where_redis_puts_them() {
        // What Redis 7.0 on x86-64 answers to GEOPOS for ZADD scores.
        let text = |score: f64| {
            let (lon, lat) = point_of_score(score).unwrap();
            (coordinate_text(lon), coordinate_text(lat))
        };
        let top = ("180".to_owned(), "85.0511287799999991".to_owned());
        let bottom = (
            "-179.99999731779098511".to_owned(),
            "-85.05112751263942528".to_owned(),
        );
        assert_eq!(text(-5.0), top);
        assert_eq!(text(1e20), bottom);
        assert_eq!(text(f64::INFINITY), bottom);
    }

    #[test]
    fn distances_print_with_four_decimals() {
        assert_eq!(distance_text(0.0), "0.0000");
        assert_eq!(distance_text(0.775), "0.7750");
        assert_eq!(distance_text(166274.15156960033), "166274.1516");
        assert_eq!(distance_text(0.00005), "0.0000");
    }

    #[test]
    fn neighbours_wrap_around_the_antimeridian() {
        let east_edge = encode_wgs84(179.99, 0.0, 4).unwrap();
        let wrapped = neighbour(east_edge, 1, 0);
        let area = decode_wgs84(wrapped).unwrap();
        assert_eq!(area.longitude.min, -180.0);
    }

    #[test]
    fn huge_and_tiny_searches_do_not_misbehave() {
        for shape in [
            Shape::Radius(f64::INFINITY),
            Shape::Radius(0.0),
            Shape::Radius(1e-300),
            Shape::Box {
                width: f64::INFINITY,
                height: 1.0,
            },
        ] {
            let search = Search {
                longitude: 179.0,
                latitude: 85.0,
                shape,
                to_meters: 1609.34,
            };
            let cells = search_cells(&search);
            assert!(!cells[0].is_none());
        }
    }
}
