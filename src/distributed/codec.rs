//! How adlens's own plan parts travel between client, scheduler and
//! executors: the raw-dump table and parse node of [`crate::raw_scan`] and
//! the model's `score_campaign` function ([`crate::model::udf`]) as tagged
//! JSON; everything else goes to Ballista's own codecs, which know
//! its shuffle nodes and the Parquet/CSV file formats.

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};

use crate::model::udf::{ModelSource, ScoreUdf};
use crate::raw_scan::{RawFiles, RawFilesExec, RawFilesTable, RawParse};

/// Marks an adlens node in a codec buffer (Ballista's nodes are protobuf,
/// which never starts with these bytes).
const TAG: &[u8] = b"adlens:";

/// An adlens node as it travels.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Node {
    /// The raw-dump table: its files and batch size.
    RawTable {
        files: Vec<String>,
        batch_size: usize,
    },
    /// The parse node (its file list travels as its input).
    RawParse(RawParse),
    /// `score_campaign`: the model's directory and version.
    Score(ModelSource),
}

fn encode(node: &Node, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(TAG);
    serde_json::to_writer(buf, node).map_err(|e| DataFusionError::External(Box::new(e)))
}

/// The adlens node in `buf`, if it holds one.
fn decode(buf: &[u8]) -> Option<Result<Node>> {
    let json = buf.strip_prefix(TAG)?;
    Some(serde_json::from_slice(json).map_err(|e| DataFusionError::External(Box::new(e))))
}

fn unexpected(node: &Node) -> DataFusionError {
    DataFusionError::Internal(format!("unexpected adlens plan node {node:?}"))
}

/// `score_campaign` carries its model's place; other functions nothing
/// (every node has them registered by name).
fn encode_udf(udf: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
    match ScoreUdf::source_of(udf) {
        Some(source) => encode(&Node::Score(source?.clone()), buf),
        None => Ok(()),
    }
}

fn decode_udf(name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
    match decode(buf).transpose()? {
        Some(Node::Score(source)) => Ok(Arc::new(ScoreUdf::from_source(source)?)),
        Some(other) => Err(unexpected(&other)),
        None => Err(DataFusionError::Plan(format!(
            "no function `{name}` on this node"
        ))),
    }
}

/// Logical plans: the raw-dump table, then Ballista's codec.
#[derive(Debug, Default)]
pub struct LogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match decode(buf).transpose()? {
            Some(Node::RawTable { files, batch_size }) => Ok(Arc::new(RawFilesTable {
                spec: RawFiles { files, batch_size },
            })),
            Some(other) => Err(unexpected(&other)),
            None => self
                .ballista
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match node.downcast_ref::<RawFilesTable>() {
            Some(table) => encode(
                &Node::RawTable {
                    files: table.spec.files.clone(),
                    batch_size: table.spec.batch_size,
                },
                buf,
            ),
            None => self
                .ballista
                .try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udf(node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }
}

/// Physical plans: the raw scan, then Ballista's codec.
#[derive(Debug, Default)]
pub struct PhysicalCodec {
    ballista: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match decode(buf).transpose()? {
            Some(Node::RawParse(parse)) => {
                let [input] = inputs else {
                    return Err(DataFusionError::Internal(format!(
                        "RawFilesExec takes one input, got {}",
                        inputs.len()
                    )));
                };
                Ok(Arc::new(RawFilesExec::new(Arc::clone(input), parse)?))
            }
            Some(other) => Err(unexpected(&other)),
            None => self.ballista.try_decode(buf, inputs, ctx, converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        match node.downcast_ref::<RawFilesExec>() {
            Some(scan) => encode(&Node::RawParse(scan.parse.clone()), buf),
            None => self.ballista.try_encode(node, buf, converter),
        }
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udf(node, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adlens_nodes_round_trip_and_other_buffers_are_not_taken() {
        for node in [
            Node::RawTable {
                files: vec!["a.csv".into(), "s3://b/c.csv.gz".into()],
                batch_size: 7,
            },
            Node::RawParse(RawParse {
                batch_size: 9,
                projection: Some(vec![2, 0]),
            }),
            Node::Score(ModelSource {
                dir: "/models/20261206T000000000Z-abc".into(),
                version: "20261206T000000000Z-abc".into(),
            }),
        ] {
            let mut buf = Vec::new();
            encode(&node, &mut buf).unwrap();
            assert_eq!(decode(&buf).unwrap().unwrap(), node);
        }
        assert!(decode(b"\x0a\x02protobuf").is_none());
        assert!(decode(b"adlens:{not json").unwrap().is_err());
    }
}
