//! The raw dumps as plan nodes that can travel to a Ballista executor:
//! [`RawFilesTable`] names the input files; its scan is an in-memory list of
//! them, one file per partition (`source_input`, `path`), under
//! [`RawFilesExec`], which parses each file it is handed with the reader of a
//! local run ([`crate::ingest`]: the same header check, broken-record rejects
//! and `source_input` lineage). The list is a DataFusion memory source on
//! purpose: Ballista's scheduler knows how to hand each task only its own
//! partitions of one, where a custom leaf would be run whole by every task.
//! [`RawFilesExec`] itself travels as a small JSON [`RawParse`] (see
//! [`crate::distributed::codec`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, AsArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::ingest::{self, BatchOut, Counters, InputFile};
use crate::record::raw_schema;

/// What a raw scan reads: the run's inputs in order (a file's index is its
/// `source_input`) and the records per batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFiles {
    /// Inputs as the user named them (paths or URLs every node can open).
    pub files: Vec<String>,
    /// Records per Arrow batch.
    pub batch_size: usize,
}

/// How [`RawFilesExec`] parses: what travels with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawParse {
    /// Records per Arrow batch.
    pub batch_size: usize,
    /// Columns of the raw schema to keep, in order (all when `None`).
    pub projection: Option<Vec<usize>>,
}

/// Schema of the file list under [`RawFilesExec`].
fn file_list_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source_input", DataType::Int32, false),
        Field::new("path", DataType::Utf8, false),
    ]))
}

/// `raw_campaigns` over named files, for plans that leave the process.
#[derive(Debug)]
pub struct RawFilesTable {
    /// The files and batch size.
    pub spec: RawFiles,
}

#[async_trait]
impl TableProvider for RawFilesTable {
    fn schema(&self) -> SchemaRef {
        raw_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = file_list_schema();
        let partitions = self
            .spec
            .files
            .iter()
            .enumerate()
            .map(|(position, path)| {
                let columns: Vec<ArrayRef> = vec![
                    Arc::new(Int32Array::from(vec![position as i32])),
                    Arc::new(StringArray::from(vec![path.as_str()])),
                ];
                Ok(vec![RecordBatch::try_new(Arc::clone(&schema), columns)?])
            })
            .collect::<Result<Vec<_>>>()?;
        let list = MemorySourceConfig::try_new_exec(&partitions, schema, None)?;
        let parse = RawParse {
            batch_size: self.spec.batch_size,
            projection: projection.cloned(),
        };
        Ok(Arc::new(RawFilesExec::new(list, parse)?))
    }
}

/// Parses every file its input lists, partition by partition.
#[derive(Debug)]
pub struct RawFilesExec {
    /// The list of files (`source_input`, `path`).
    pub input: Arc<dyn ExecutionPlan>,
    /// Batch size and projection.
    pub parse: RawParse,
    properties: Arc<PlanProperties>,
}

impl RawFilesExec {
    /// Parses the files `input` lists into the `projection` of the raw schema.
    pub fn new(input: Arc<dyn ExecutionPlan>, parse: RawParse) -> Result<Self> {
        let schema = match &parse.projection {
            Some(columns) => Arc::new(raw_schema().project(columns)?),
            None => raw_schema(),
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            input.output_partitioning().clone(),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Self {
            input,
            parse,
            properties: Arc::new(properties),
        })
    }
}

/// Parses the files listed by `list` on a blocking thread, sending their
/// batches down a channel; a bad header or unreadable file ends the stream
/// with an error naming the file and line.
fn parse_files(
    list: SendableRecordBatchStream,
    parse: RawParse,
    schema: SchemaRef,
) -> SendableRecordBatchStream {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let runtime = tokio::runtime::Handle::current();
    let RawParse {
        batch_size,
        projection,
    } = parse;
    tokio::task::spawn_blocking(move || {
        let errors = tx.clone();
        let mut out = BatchOut {
            senders: vec![tx],
            next: 0,
            batch_size,
            counters: Arc::new(Counters::default()),
        };
        if let Err(e) = read_listed(list, &mut out, &runtime) {
            let _ = errors.blocking_send(Err(e));
        }
    });
    let stream = ingest::tokio_stream_from(rx).map(move |batch| match &projection {
        Some(columns) => Ok(batch?.project(columns)?),
        None => batch,
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

/// Reads each (`source_input`, `path`) row of `list` into `out`.
fn read_listed(
    mut list: SendableRecordBatchStream,
    out: &mut BatchOut,
    runtime: &tokio::runtime::Handle,
) -> Result<()> {
    while let Some(batch) = runtime.block_on(list.next()) {
        let batch = batch?;
        let positions = batch.column(0).as_primitive::<Int32Type>();
        let paths = batch.column(1).as_string::<i32>();
        for row in 0..batch.num_rows() {
            let input = runtime
                .block_on(InputFile::resolve(paths.value(row)))
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            tracing::info!("reading input {} `{}`", positions.value(row), input.path);
            let read = ingest::read_input(positions.value(row) as usize, &input, out, runtime)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            if read.is_none() {
                return Ok(());
            }
        }
    }
    Ok(())
}

impl DisplayAs for RawFilesExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawFilesExec: batch_size={}", self.parse.batch_size)
    }
}

impl ExecutionPlan for RawFilesExec {
    fn name(&self) -> &'static str {
        "RawFilesExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children).map_err(|c| {
            DataFusionError::Internal(format!("RawFilesExec takes one input, got {}", c.len()))
        })?;
        Ok(Arc::new(Self::new(input, self.parse.clone())?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let list = self.input.execute(partition, context)?;
        Ok(parse_files(list, self.parse.clone(), self.schema()))
    }
}
