//! A trained model as a SQL function: `score_campaign(title, keywords,
//! description, domain, host, url)` gives each campaign its cluster and
//! distance (a struct of `cluster_id`, `distance`), exactly as
//! [`Model::score_text`]. `score` and `batch` run their scoring pass through
//! it, so on a Ballista cluster the executors score.
//!
//! The function travels between cluster nodes as the model's directory and
//! version ([`ModelSource`]), not as the model: a dmm model is megabytes, and
//! Ballista sends the plan with every task. Every node loads the directory
//! once (see [`ScoreUdf::from_source`]), so it must reach the model by the
//! same path.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use arrow::array::{ArrayRef, Float32Array, RecordBatch, StructArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Fields, Schema};
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde::{Deserialize, Serialize};

use super::Model;
use super::features::{FEATURE_COLUMNS, TextColumns};

/// The function's name in SQL.
pub const NAME: &str = "score_campaign";

/// Where a model was loaded from: what the function carries between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelSource {
    pub dir: PathBuf,
    pub version: String,
}

/// `score_campaign` over one model.
#[derive(Debug)]
pub struct ScoreUdf {
    model: Arc<Model>,
    /// `None` for a model only in memory (just trained): it cannot travel.
    source: Option<ModelSource>,
    signature: Signature,
}

impl ScoreUdf {
    pub fn udf(model: Arc<Model>, source: Option<ModelSource>) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            model,
            source,
            signature: Signature::any(FEATURE_COLUMNS.len(), Volatility::Immutable),
        })
    }

    /// The function a node decodes: the model at `source`, loaded once per
    /// process and checked to be the version the plan was made with.
    pub fn from_source(source: ModelSource) -> Result<ScalarUDF> {
        static LOADED: LazyLock<Mutex<HashMap<ModelSource, Arc<Model>>>> =
            LazyLock::new(Mutex::default);
        let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
        let model = match loaded.get(&source) {
            Some(model) => Arc::clone(model),
            None => {
                let model = Arc::new(
                    Model::load(&source.dir).map_err(|e| DataFusionError::External(e.into()))?,
                );
                if model.meta.version != source.version {
                    return exec_err!(
                        "`{}` holds model {}, the plan was made with {}",
                        source.dir.display(),
                        model.meta.version,
                        source.version
                    );
                }
                loaded.insert(source.clone(), Arc::clone(&model));
                model
            }
        };
        Ok(Self::udf(model, Some(source)))
    }

    /// What a codec sends for `udf`: `Some` for `score_campaign` only.
    pub fn source_of(udf: &ScalarUDF) -> Option<Result<&ModelSource>> {
        let score = udf.inner().downcast_ref::<Self>()?;
        Some(score.source.as_ref().ok_or_else(|| {
            DataFusionError::Plan(format!(
                "model {} was not loaded from a directory, so `{NAME}` cannot run on a cluster",
                score.model.meta.version
            ))
        }))
    }
}

/// Two instances are the same function when they score with the same model.
impl PartialEq for ScoreUdf {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.model, &other.model) && self.source == other.source
    }
}

impl Eq for ScoreUdf {}

impl Hash for ScoreUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.model.meta.version.hash(state);
        self.source.hash(state);
    }
}

fn output_fields() -> Fields {
    Fields::from(vec![
        Field::new("cluster_id", DataType::UInt32, false),
        Field::new("distance", DataType::Float32, false),
    ])
}

impl ScalarUDFImpl for ScoreUdf {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(output_fields()))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let columns = args
            .args
            .into_iter()
            .map(|a| a.into_array(rows))
            .collect::<Result<Vec<ArrayRef>>>()?;
        // The arguments by the names `TextColumns` reads them by.
        let schema = Schema::new(
            FEATURE_COLUMNS
                .iter()
                .zip(&columns)
                .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
                .collect::<Vec<_>>(),
        );
        let batch = RecordBatch::try_new(Arc::new(schema), columns)?;
        let text = TextColumns::new(&batch)?;
        let (clusters, distances): (Vec<u32>, Vec<f32>) = (0..rows)
            .map(|i| self.model.score_text(&text.row(i)))
            .unzip();
        let scored = StructArray::new(
            output_fields(),
            vec![
                Arc::new(UInt32Array::from(clusters)),
                Arc::new(Float32Array::from(distances)),
            ],
            None,
        );
        Ok(ColumnarValue::Array(Arc::new(scored)))
    }
}
