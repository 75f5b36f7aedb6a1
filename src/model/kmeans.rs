//! k-means over sparse vectors: k-means++, k-means|| or random seeding on a
//! subset, then Lloyd's iterations over the whole training sample (which
//! `batch` bounds by `--sample-rows`, so memory stays bounded). Mini-batch
//! updates (Sculley 2010) were tried first: NMI 0.506 on the StackOverflow
//! titles at k = 20, where these full iterations give 0.6 (and linfa 0.588).
//!
//! A short text has ~10-30 non-zero features out of `--dim` (2048), so every
//! distance here costs the vector's non-zeros, not the dimension:
//! `|x - c|² = |x|² + |c|² - 2·x·c` with `|c|²` kept per centroid. linfa's
//! k-means, used before, takes dense rows and pays `k × dim` per row: at
//! k = 152 it took minutes on 11k texts, where this takes a fraction of a
//! second. Assignment runs on every core (rayon); results do not depend on
//! the number of threads.

use rand::Rng;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;

use crate::model::features::SparseVec;

/// How centroids are seeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Init {
    /// k-means++ (default): D² sampling, one centroid at a time.
    #[value(name = "kmeans++")]
    KMeansPlusPlus,
    /// k-means|| (Bahmani et al. 2012), the parallel variant for large k: a
    /// few rounds of oversampling, then k-means++ over the weighted candidates.
    #[value(name = "kmeans||")]
    KMeansPara,
    /// k distinct random records.
    Random,
}

impl Init {
    pub fn name(self) -> &'static str {
        match self {
            Self::KMeansPlusPlus => "kmeans++",
            Self::KMeansPara => "kmeans||",
            Self::Random => "random",
        }
    }
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub init: Init,
    /// Whole runs (seeding and iterations); the lowest inertia is kept.
    pub n_runs: usize,
    /// Rows the seeding draws from.
    pub batch_rows: usize,
    /// Most Lloyd iterations per run.
    pub max_steps: u64,
    /// Stop once an iteration moves no centroid farther than this.
    pub tolerance: f64,
    pub seed: u64,
}

/// Dense centroids with their squared norms: the one home of the
/// nearest-centroid arithmetic, used by training, scoring ([`crate::model`])
/// and the silhouette that picks k.
#[derive(Debug, Clone, PartialEq)]
pub struct Centroids {
    rows: Vec<Vec<f32>>,
    norms: Vec<f32>,
}

impl Centroids {
    pub fn new(rows: Vec<Vec<f32>>) -> Self {
        let norms = rows.iter().map(|c| dot_dense(c, c)).collect();
        Self { rows, norms }
    }

    /// `k` rows of `dim` values.
    pub fn rows(&self) -> &[Vec<f32>] {
        &self.rows
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The squared Euclidean distance from `x` to each centroid, from
    /// `|x|² + |c|² - 2·x·c`, so a sparse row costs its non-zeros per centroid.
    pub fn squared_distances<'a>(&'a self, x: &'a SparseVec) -> impl Iterator<Item = f32> + 'a {
        let x2: f32 = x.iter().map(|(_, v)| v * v).sum();
        self.rows
            .iter()
            .zip(&self.norms)
            .map(move |(c, c2)| (x2 + c2 - 2.0 * dot(x, c)).max(0.0))
    }

    /// The nearest centroid to `x` (the first on a tie) and the squared
    /// distance to it.
    pub fn nearest(&self, x: &SparseVec) -> (usize, f32) {
        let mut best = (0, f32::INFINITY);
        for (j, d) in self.squared_distances(x).enumerate() {
            if d < best.1 {
                best = (j, d);
            }
        }
        best
    }
}

fn dot(x: &SparseVec, c: &[f32]) -> f32 {
    x.iter()
        .map(|(i, v)| v * c.get(*i as usize).copied().unwrap_or(0.0))
        .sum()
}

fn dot_dense(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn to_dense(x: &SparseVec, dim: usize) -> Vec<f32> {
    let mut out = vec![0.0; dim];
    for (i, v) in x {
        if let Some(slot) = out.get_mut(*i as usize) {
            *slot = *v;
        }
    }
    out
}

/// Sum of squared distances from `rows` to their nearest centroid.
fn inertia(centroids: &Centroids, rows: &[&SparseVec]) -> f64 {
    let partials: Vec<f64> = rows
        .par_chunks(CHUNK_ROWS)
        .map(|chunk| {
            chunk
                .iter()
                .map(|x| f64::from(centroids.nearest(x).1))
                .sum()
        })
        .collect();
    partials.iter().sum()
}

/// Rows per parallel work item: sums over them are added up in order, so a
/// result does not depend on how threads shared the work.
const CHUNK_ROWS: usize = 2048;

/// Trains `k` centroids on `vectors`: `n_runs` times, seeding from
/// `batch_rows` rows of a seeded shuffle and then running Lloyd's iterations
/// over all of `vectors` until no centroid moves more than `tolerance` or
/// `max_steps` is reached; the run with the lowest inertia wins. Returns the
/// centroids and the iterations of the winning run.
pub fn train(
    vectors: &[SparseVec],
    dim: usize,
    k: usize,
    params: &TrainOptions,
) -> (Vec<Vec<f32>>, u64) {
    let k = k.clamp(1, vectors.len().max(1));
    let mut rng = Pcg64Mcg::seed_from_u64(params.seed);
    let rows: Vec<&SparseVec> = vectors.iter().collect();
    let best = (0..params.n_runs.max(1))
        .map(|_| {
            let mut order: Vec<usize> = (0..rows.len()).collect();
            order.shuffle(&mut rng);
            let seeding_rows = params.batch_rows.max(k).min(rows.len().max(1));
            let subset: Vec<&SparseVec> = order[..seeding_rows].iter().map(|&i| rows[i]).collect();
            let mut centroids = Centroids::new(seed(&subset, k, dim, params.init, &mut rng));
            let mut steps = 0;
            while steps < params.max_steps.max(1) {
                steps += 1;
                if lloyd(&mut centroids, &rows, dim) < params.tolerance {
                    break;
                }
            }
            (inertia(&centroids, &rows), centroids, steps)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .expect("at least one run");
    (best.1.rows, best.2)
}

/// One Lloyd iteration: every row to its nearest centroid, every centroid
/// to the mean of its rows (one with no rows stays). Returns the largest
/// distance a centroid moved.
fn lloyd(centroids: &mut Centroids, rows: &[&SparseVec], dim: usize) -> f64 {
    let k = centroids.rows.len();
    // Fixed chunks summed in order: rayon's fold splits work as threads
    // steal it, so float sums (and then the winning run) changed from one
    // run to the next with the same seed.
    let partials: Vec<(Vec<Vec<f32>>, Vec<u64>)> = rows
        .par_chunks(CHUNK_ROWS)
        .map(|chunk| {
            let (mut sums, mut members) = (vec![Vec::<f32>::new(); k], vec![0u64; k]);
            for x in chunk {
                let j = centroids.nearest(x).0;
                let sum = &mut sums[j];
                if sum.is_empty() {
                    sum.resize(dim, 0.0);
                }
                for (i, v) in x.iter() {
                    if let Some(slot) = sum.get_mut(*i as usize) {
                        *slot += v;
                    }
                }
                members[j] += 1;
            }
            (sums, members)
        })
        .collect();
    let (mut sums, mut members) = (vec![Vec::<f32>::new(); k], vec![0u64; k]);
    for (b, mb) in partials {
        for j in 0..k {
            members[j] += mb[j];
            if sums[j].is_empty() {
                sums[j] = b[j].clone();
            } else if !b[j].is_empty() {
                sums[j].iter_mut().zip(&b[j]).for_each(|(x, y)| *x += y);
            }
        }
    }
    let mut moved = 0f64;
    for (j, sum) in sums.iter().enumerate() {
        if members[j] == 0 {
            continue;
        }
        // Spherical k-means: rows are unit vectors, so centroids are kept
        // unit too (the mean's direction). A plain mean shrinks toward the
        // origin as its rows spread, and one such centroid then swallows
        // every row unlike the others (40% of the StackOverflow titles).
        let norm = dot_dense(sum, sum).sqrt();
        if norm == 0.0 {
            continue;
        }
        let scale = 1.0 / norm;
        let c = &mut centroids.rows[j];
        let mut shift = 0f32;
        for (ci, si) in c.iter_mut().zip(sum) {
            let next = si * scale;
            shift += (next - *ci) * (next - *ci);
            *ci = next;
        }
        centroids.norms[j] = dot_dense(c, c);
        moved = moved.max(f64::from(shift.sqrt()));
    }
    moved
}

/// Initial centroids from `rows` (at least `k` of them).
fn seed(rows: &[&SparseVec], k: usize, dim: usize, how: Init, rng: &mut Pcg64Mcg) -> Vec<Vec<f32>> {
    let picked = match how {
        Init::Random => rand::seq::index::sample(rng, rows.len(), k).into_vec(),
        Init::KMeansPlusPlus => plus_plus(rows, &vec![1.0; rows.len()], k, rng),
        Init::KMeansPara => parallel(rows, k, rng),
    };
    picked.into_iter().map(|i| to_dense(rows[i], dim)).collect()
}

/// Squared distance between two sparse vectors (both sorted by index).
fn distance2(a: &SparseVec, b: &SparseVec) -> f32 {
    let (mut i, mut j, mut d) = (0, 0, 0f32);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                d += (x.1 - y.1) * (x.1 - y.1);
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                d += x.1 * x.1;
                i += 1;
            }
            (Some(x), None) => {
                d += x.1 * x.1;
                i += 1;
            }
            (_, Some(y)) => {
                d += y.1 * y.1;
                j += 1;
            }
            (None, None) => break,
        }
    }
    d
}

/// Weighted k-means++: indices of `k` rows, each drawn with probability
/// proportional to its weight times its squared distance to those drawn.
fn plus_plus(rows: &[&SparseVec], weights: &[f64], k: usize, rng: &mut Pcg64Mcg) -> Vec<usize> {
    let mut picked = vec![pick(weights, rng).unwrap_or(0)];
    let mut d2: Vec<f64> = rows
        .par_iter()
        .map(|x| f64::from(distance2(x, rows[picked[0]])))
        .collect();
    while picked.len() < k {
        let scores: Vec<f64> = d2.iter().zip(weights).map(|(d, w)| d * w).collect();
        // All rows coincide with a centroid: any row not yet taken will do.
        let next = pick(&scores, rng)
            .or_else(|| (0..rows.len()).find(|i| !picked.contains(i)))
            .unwrap_or(0);
        picked.push(next);
        let c = rows[next];
        d2.par_iter_mut()
            .zip(rows.par_iter())
            .for_each(|(d, x)| *d = d.min(f64::from(distance2(x, c))));
    }
    picked
}

/// k-means||: 5 rounds that each keep every row with probability
/// `2k·d²/Σd²`, then weighted k-means++ over those candidates.
fn parallel(rows: &[&SparseVec], k: usize, rng: &mut Pcg64Mcg) -> Vec<usize> {
    let mut candidates = vec![rng.random_range(0..rows.len())];
    let mut d2: Vec<f64> = rows
        .iter()
        .map(|x| f64::from(distance2(x, rows[candidates[0]])))
        .collect();
    for _ in 0..5 {
        let total: f64 = d2.iter().sum();
        if total <= 0.0 {
            break;
        }
        let new: Vec<usize> = (0..rows.len())
            .filter(|&i| rng.random::<f64>() < 2.0 * k as f64 * d2[i] / total)
            .collect();
        for &c in &new {
            for (d, x) in d2.iter_mut().zip(rows) {
                *d = d.min(f64::from(distance2(x, rows[c])));
            }
        }
        candidates.extend(new);
    }
    candidates.sort_unstable();
    candidates.dedup();
    if candidates.len() < k {
        return plus_plus(rows, &vec![1.0; rows.len()], k, rng);
    }
    let chosen: Vec<&SparseVec> = candidates.iter().map(|&i| rows[i]).collect();
    let mut weights = vec![0f64; chosen.len()];
    for x in rows {
        let nearest = (0..chosen.len())
            .min_by(|&a, &b| distance2(x, chosen[a]).total_cmp(&distance2(x, chosen[b])))
            .unwrap_or(0);
        weights[nearest] += 1.0;
    }
    plus_plus(&chosen, &weights, k, rng)
        .into_iter()
        .map(|i| candidates[i])
        .collect()
}

/// An index drawn with probability proportional to `scores`; `None` when
/// they are all zero.
fn pick(scores: &[f64], rng: &mut Pcg64Mcg) -> Option<usize> {
    let total: f64 = scores.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return None;
    }
    let mut target = rng.random::<f64>() * total;
    for (i, s) in scores.iter().enumerate() {
        target -= s;
        if target <= 0.0 && *s > 0.0 {
            return Some(i);
        }
    }
    scores.iter().rposition(|s| *s > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three well-separated groups of sparse rows.
    fn groups() -> Vec<SparseVec> {
        (0..300)
            .map(|i| {
                let g = (i % 3) as u32 * 10;
                vec![(g, 1.0), (g + 1, 0.5 + (i % 7) as f32 * 0.01)]
            })
            .collect()
    }

    #[test]
    fn separated_groups_are_found_by_every_seeding() {
        let rows = groups();
        for init in [Init::KMeansPlusPlus, Init::KMeansPara, Init::Random] {
            let params = TrainOptions {
                init,
                n_runs: 3,
                batch_rows: 64,
                max_steps: 50,
                tolerance: 1e-4,
                seed: 7,
            };
            let (rows_c, _) = train(&rows, 32, 3, &params);
            let c = Centroids::new(rows_c);
            let label = |x: &SparseVec| c.nearest(x).0;
            for (i, x) in rows.iter().enumerate() {
                assert_eq!(label(x), label(&rows[i % 3]), "{init:?} row {i}");
            }
            let distinct: std::collections::HashSet<usize> = rows[..3].iter().map(label).collect();
            assert_eq!(distinct.len(), 3, "{init:?}");
        }
    }

    #[test]
    fn sparse_distances_match_dense_ones() {
        let a: SparseVec = vec![(1, 1.0), (4, 2.0)];
        let b: SparseVec = vec![(1, 0.5), (3, 1.0)];
        assert!((distance2(&a, &b) - (0.25 + 1.0 + 4.0)).abs() < 1e-6);
        let c = Centroids::new(vec![to_dense(&b, 8)]);
        assert!((c.nearest(&a).1 - distance2(&a, &b)).abs() < 1e-5);
    }

    #[test]
    fn training_is_deterministic() {
        let rows = groups();
        let params = TrainOptions {
            init: Init::KMeansPlusPlus,
            n_runs: 2,
            batch_rows: 50,
            max_steps: 20,
            tolerance: 0.0,
            seed: 3,
        };
        assert_eq!(train(&rows, 32, 5, &params), train(&rows, 32, 5, &params));
    }
}
