//! Builds the one `WorkspaceEdit` for a plan, shaped by what the client supports:
//! `CreateFile` + full insert for new files, a whole-document replacement for existing ones.

use std::collections::HashMap;
use std::path::Path;

use tower_lsp_server::ls_types::*;

use super::capabilities::ClientCaps;
use super::documents::{full_range, Documents};
use crate::apply::{ChangeKind, FileChange};

/// The edit, and which of the plan's changes it carries; the rest must be written to disk.
pub struct BuiltEdit {
    pub edit: WorkspaceEdit,
    pub in_edit: Vec<usize>,
    pub to_disk: Vec<usize>,
}

/// The path the client knows a file by: the canonical path re-rooted on the folder the client
/// named (they differ when the folder is reached through a symlink).
pub fn client_path(
    change_abs: &Path,
    canonical_root: &Path,
    client_root: &Path,
) -> std::path::PathBuf {
    match change_abs.strip_prefix(canonical_root) {
        Ok(rel) => client_root.join(rel),
        Err(_) => change_abs.to_path_buf(),
    }
}

/// `annotate`: every file gets its own change annotation (`label` = its summary,
/// `needsConfirmation`), so a client with change-annotation support shows the edit for review
/// and the user can leave files out. Needs `documentChanges`.
pub fn build(
    changes: &[FileChange],
    caps: &ClientCaps,
    docs: &Documents,
    canonical_root: &Path,
    client_root: &Path,
    annotate: bool,
) -> BuiltEdit {
    let enc = caps.encoding;
    let annotate = annotate && caps.document_changes;
    let mut annotations: HashMap<ChangeAnnotationIdentifier, ChangeAnnotation> = HashMap::new();
    let text_edit = |edit: TextEdit, id: &Option<String>| match id {
        Some(id) => OneOf::Right(AnnotatedTextEdit {
            text_edit: edit,
            annotation_id: id.clone(),
        }),
        None => OneOf::Left(edit),
    };
    let mut ops: Vec<DocumentChangeOperation> = Vec::new();
    let mut plain: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
    let mut in_edit = Vec::new();
    let mut to_disk = Vec::new();
    let can_create = caps.document_changes && caps.create_files;

    for (i, c) in changes.iter().enumerate() {
        let path = client_path(&c.abs, canonical_root, client_root);
        let Some(uri) = Uri::from_file_path(&path) else {
            to_disk.push(i);
            continue;
        };
        let annotation: Option<String> = annotate.then(|| format!("builder-file-{i}"));
        match c.kind {
            ChangeKind::Create => {
                if !can_create {
                    to_disk.push(i);
                    continue;
                }
                let mut text = c.new_text.as_str();
                if caps.neovim {
                    // Neovim's new buffer already ends in a line; saving adds the final newline.
                    text = text.strip_suffix('\n').unwrap_or(text);
                }
                ops.push(DocumentChangeOperation::Op(ResourceOp::Create(
                    CreateFile {
                        uri: uri.clone(),
                        options: None,
                        annotation_id: annotation.clone(),
                    },
                )));
                ops.push(DocumentChangeOperation::Edit(TextDocumentEdit {
                    text_document: OptionalVersionedTextDocumentIdentifier { uri, version: None },
                    edits: vec![text_edit(
                        TextEdit {
                            range: Range::default(),
                            new_text: text.to_string(),
                        },
                        &annotation,
                    )],
                }));
            }
            ChangeKind::Delete => {
                if !(caps.document_changes && caps.delete_files) {
                    to_disk.push(i);
                    continue;
                }
                ops.push(DocumentChangeOperation::Op(ResourceOp::Delete(
                    DeleteFile {
                        uri,
                        options: Some(DeleteFileOptions {
                            recursive: Some(false),
                            ignore_if_not_exists: Some(true),
                        }),
                        annotation_id: annotation.clone(),
                    },
                )));
            }
            ChangeKind::Update => {
                let old = c.old_text.as_deref().unwrap_or("");
                let edit = TextEdit {
                    range: full_range(old, enc),
                    new_text: c.new_text.clone(),
                };
                if caps.document_changes {
                    ops.push(DocumentChangeOperation::Edit(TextDocumentEdit {
                        text_document: OptionalVersionedTextDocumentIdentifier {
                            uri,
                            version: if c.open {
                                docs.version_of_path(&path)
                            } else {
                                None
                            },
                        },
                        edits: vec![text_edit(edit, &annotation)],
                    }));
                } else {
                    plain.entry(uri).or_default().push(edit);
                }
            }
        }
        if let Some(id) = annotation {
            annotations.insert(
                id,
                ChangeAnnotation {
                    label: crate::review::label(c),
                    needs_confirmation: Some(true),
                    description: Some("Builder: review before it lands".into()),
                },
            );
        }
        in_edit.push(i);
    }

    let edit = if caps.document_changes {
        WorkspaceEdit {
            changes: None,
            document_changes: Some(DocumentChanges::Operations(ops)),
            change_annotations: (!annotations.is_empty()).then_some(annotations),
        }
    } else {
        WorkspaceEdit {
            changes: Some(plain),
            document_changes: None,
            change_annotations: None,
        }
    };
    BuiltEdit {
        edit,
        in_edit,
        to_disk,
    }
}
