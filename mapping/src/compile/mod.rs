//! Compiling a mapping file: parse the TOML strictly, resolve tables, sub-mappings, date
//! formats, paths and the output schema, and report every problem at once with the file,
//! the line and the field it is in.

use crate::Mapping;
use crate::codec::csv::CsvOptions;
use crate::codec::xml::{XmlLimits, XmlWriteOptions};
use crate::codec::{DecodeOptions, EncodeOptions, Format, line_column};
use crate::datetime::Zone;
use crate::engine::{Rule, Source, Table};
use crate::error::{CompileError, CompileErrors};
use crate::schema::Schema;
use crate::spec::{MappingFile, TableFile, TableSpec, toml_to_json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

mod fields;

use fields::{Scope, compile_rules, compile_sub};

/// Where schemas live, relative to the mappings directory.
pub const SCHEMA_DIR: &str = "_schemas";

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<CompileError>,
}

impl Ctx<'_> {
    fn line_of(&self, span: std::ops::Range<usize>) -> usize {
        line_column(self.text, span.start).0
    }

    fn err(&mut self, line: usize, field: Option<&str>, message: impl Into<String>) {
        self.errors.push(CompileError {
            file: self.file.to_path_buf(),
            line,
            field: field.map(str::to_string),
            message: message.into(),
        });
    }
}

/// Compile the mapping at `file`. `mappings_root` is the directory that holds `_schemas`.
pub fn compile_file(file: &Path, mappings_root: &Path) -> Result<Mapping, CompileErrors> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        CompileErrors(vec![CompileError {
            file: file.to_path_buf(),
            line: 0,
            field: None,
            message: format!("cannot read: {e}"),
        }])
    })?;
    compile_str(&text, file, mappings_root)
}

/// Compile mapping text; `file` names it in errors and anchors relative table files.
pub fn compile_str(
    text: &str,
    file: &Path,
    mappings_root: &Path,
) -> Result<Mapping, CompileErrors> {
    let mut ctx = Ctx {
        file,
        text,
        errors: Vec::new(),
    };
    let spec: MappingFile = match toml::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            let line = e.span().map_or(0, |s| ctx.line_of(s));
            ctx.err(line, None, e.message().trim().to_string());
            return Err(CompileErrors(ctx.errors));
        }
    };
    let zone = match spec
        .mapping
        .timezone
        .as_deref()
        .map(Zone::parse)
        .transpose()
    {
        Ok(z) => z.unwrap_or(Zone::VIETNAM),
        Err(e) => {
            ctx.err(0, None, format!("[mapping] timezone: {e}"));
            Zone::VIETNAM
        }
    };
    let base_dir = file.parent().unwrap_or(Path::new("."));
    let tables = compile_tables(&mut ctx, spec.tables, base_dir);

    // Sub-mappings may use each other, in any order; compile the used ones depth-first and
    // refuse cycles.
    let sub_specs = spec.sub;
    let mut scope = Scope {
        subs: &sub_specs,
        tables: &tables,
        zone,
        done: HashMap::new(),
        visiting: HashSet::new(),
    };
    for name in sub_specs.keys() {
        compile_sub(&mut ctx, name, &mut scope, 0);
    }
    let rules = compile_rules(&mut ctx, &spec.field, &mut scope);
    if spec.field.is_empty() {
        ctx.err(0, None, "the mapping has no [[field]] rules");
    }

    let schema = spec.mapping.schema.as_deref().and_then(|name| {
        let path = mappings_root.join(SCHEMA_DIR).join(format!("{name}.toml"));
        match std::fs::read_to_string(&path) {
            Err(e) => {
                ctx.err(
                    0,
                    None,
                    format!("schema `{name}`: cannot read {}: {e}", path.display()),
                );
                None
            }
            Ok(t) => match Schema::compile(name, &t) {
                Ok(s) => Some(Arc::new(s)),
                Err(problems) => {
                    for p in problems {
                        ctx.err(0, None, format!("schema {}: {p}", path.display()));
                    }
                    None
                }
            },
        }
    });

    let decode = DecodeOptions {
        format: spec.input.format,
        xml_limits: XmlLimits::default(),
        csv: CsvOptions {
            delimiter: delimiter(&mut ctx, spec.input.delimiter, "input"),
            encoding: spec.input.encoding,
            ..CsvOptions::default()
        },
        records: spec
            .input
            .records
            .map(|r| r.split('.').map(str::to_string).collect()),
    };
    let xml = spec.output.xml.unwrap_or_default();
    if spec.output.format != Format::Xml
        && (xml.soap || xml.root.is_some() || xml.namespace.is_some())
    {
        ctx.err(
            0,
            None,
            "[output.xml] is set but the output format is not xml",
        );
    }
    let mut key_order = crate::codec::KeyOrder::default();
    collect_key_order(&rules, &mut key_order);
    let encode = EncodeOptions {
        format: spec.output.format,
        xml: XmlWriteOptions {
            root: xml.root,
            soap: xml.soap,
            namespace: xml.namespace,
            namespaces: xml.namespaces.into_iter().collect(),
        },
        csv_delimiter: delimiter(&mut ctx, spec.output.delimiter, "output"),
        key_order: Arc::new(key_order),
    };
    if !ctx.errors.is_empty() {
        return Err(CompileErrors(ctx.errors));
    }
    let plan = crate::plan::Plan::build(&rules);
    let record_fields = crate::plan::want::Want::of_rules(&rules);
    let document_fields = match &decode.records {
        Some(at) => record_fields.clone().under(at),
        None => record_fields.clone(),
    };
    let door = crate::door::SchemaCheck::compile(&crate::input_schema::input_schema(
        &rules,
        schema.as_deref(),
    ))
    .map_err(|e| {
        CompileErrors(vec![CompileError {
            file: file.to_path_buf(),
            line: 0,
            field: None,
            message: format!("the input schema derived from this mapping cannot be checked: {e}"),
        }])
    })?;
    Ok(Mapping {
        file: file.to_path_buf(),
        door,
        description: spec.mapping.description,
        decode,
        encode,
        rules,
        schema,
        plan,
        record_fields,
        document_fields,
    })
}

fn delimiter(ctx: &mut Ctx<'_>, d: Option<char>, which: &str) -> u8 {
    match d {
        None => b',',
        Some(c) if c.is_ascii() && c != '"' && c != '\n' => c as u8,
        Some(c) => {
            ctx.err(0, None, format!("[{which}] delimiter `{c}` must be one ASCII character other than a quote or newline"));
            b','
        }
    }
}

fn compile_tables(
    ctx: &mut Ctx<'_>,
    specs: BTreeMap<String, Spanned<TableSpec>>,
    base_dir: &Path,
) -> HashMap<String, Arc<Table>> {
    let mut out = HashMap::new();
    for (name, spanned) in specs {
        let line = ctx.line_of(spanned.span());
        let t = spanned.into_inner();
        let (values, default, ignore_case) = match (t.file, t.values) {
            (Some(_), Some(_)) => {
                ctx.err(
                    line,
                    None,
                    format!("table `{name}`: give `file` or `values`, not both"),
                );
                continue;
            }
            (None, None) => {
                ctx.err(
                    line,
                    None,
                    format!("table `{name}`: needs `values` or `file`"),
                );
                continue;
            }
            (None, Some(v)) => (v, t.default, t.ignore_case),
            (Some(f), None) => {
                let path: PathBuf = base_dir.join(&f);
                let loaded = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
                    .and_then(|s| {
                        toml::from_str::<TableFile>(&s)
                            .map_err(|e| format!("{}: {}", path.display(), e.message().trim()))
                    });
                match loaded {
                    Ok(tf) => (
                        tf.values,
                        t.default.or(tf.default),
                        t.ignore_case || tf.ignore_case,
                    ),
                    Err(e) => {
                        ctx.err(line, None, format!("table `{name}`: {e}"));
                        continue;
                    }
                }
            }
        };
        let values = values
            .iter()
            .map(|(k, v)| {
                let k = if ignore_case {
                    k.to_lowercase()
                } else {
                    k.clone()
                };
                (k, toml_to_json(v))
            })
            .collect();
        out.insert(
            name.clone(),
            Arc::new(Table {
                name,
                values,
                default: default.as_ref().map(toml_to_json),
                ignore_case,
            }),
        );
    }
    out
}

/// Field names in the order the rules first write them (sub-mappings where they are used).
fn collect_key_order(rules: &[Rule], order: &mut crate::codec::KeyOrder) {
    for rule in rules {
        for step in &rule.to.steps {
            if let crate::path::Step::Key(k) = step {
                order.push(k);
            }
        }
        if let Source::Each { rules, .. } = &rule.source {
            collect_key_order(rules, order);
        }
    }
}
