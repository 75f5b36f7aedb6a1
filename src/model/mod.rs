//! Clustering models: the tokens and vectors a campaign is read as
//! ([`features`]), the two algorithms that group them (sparse k-means,
//! [`kmeans`]; the Dirichlet multinomial mixture, [`dmm`], and its online
//! form for the stream, [`online`]), the versioned artifact that carries
//! a trained model to `score`, `stream` and Python ([`artifact`]), and the
//! model as a SQL function that scores on any node of a cluster ([`udf`]).

pub mod artifact;
pub mod dmm;
pub mod features;
pub mod kmeans;
pub mod online;
pub mod udf;

pub use artifact::{
    ClusterLabel, FORMAT_VERSION, LATEST, Model, ModelMeta, TrainingInfo, latest_dir,
    latest_version, set_latest, versions,
};
