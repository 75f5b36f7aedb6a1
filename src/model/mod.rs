//! Clustering models: the tokens and vectors a campaign is read as
//! ([`features`]), the two algorithms that group them (sparse k-means,
//! [`kmeans`]; the Dirichlet multinomial mixture, [`dmm`], and its online
//! form for the stream, [`online`]) and the versioned
//! artifact that carries a trained model to `score`, `stream` and Python
//! ([`artifact`]).

pub mod artifact;
pub mod dmm;
pub mod features;
pub mod kmeans;
pub mod online;

pub use artifact::{
    ClusterLabel, FORMAT_VERSION, LATEST, Model, ModelMeta, TrainingInfo, latest_version,
    set_latest, versions,
};
