//! An image's signatures (with their verification), SBOMs (one searchable package table) and
//! attestations, read apart from the image's page so that a slow artifact does not hold it up.

use leptos::prelude::*;

use crate::api::signatures::{
    AttestationRow, PackageRow, SbomView, SignatureRow, SupplyChain, Verification, get_supply_chain,
};
use crate::components::{ErrorPanel, LiveRegion, Loading, SearchField};
use crate::format::{encode, short_digest};

/// Package rows shown at once; a search narrows larger SBOMs.
const SHOWN_PACKAGES: usize = 500;

#[component]
pub fn SupplyChainSections(
    namespace: String,
    stream: String,
    digest: String,
    /// The package search (`?packages=`).
    packages: String,
) -> impl IntoView {
    // The stream's address, for links to the artifacts (`/ns/…/streams/…`).
    let base = format!("/ns/{}/streams/{}", encode(&namespace), encode(&stream));
    let page = format!("{base}/images/{}", encode(&digest));
    let chain = Resource::new(
        move || (namespace.clone(), stream.clone(), digest.clone()),
        |(namespace, stream, digest)| get_supply_chain(namespace, stream, digest),
    );
    view! {
        <Suspense fallback=|| view! { <section class="panel"><Loading what="signatures and SBOMs"/></section> }>
            {move || {
                let (base, page, packages) = (base.clone(), page.clone(), packages.clone());
                Suspend::new(async move {
                    match chain.await {
                        Ok(chain) => view! { <Sections chain base page packages/> }.into_any(),
                        Err(error) => view! { <section class="panel"><ErrorPanel error/></section> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn Sections(chain: SupplyChain, base: String, page: String, packages: String) -> impl IntoView {
    let SupplyChain {
        signatures,
        sboms,
        attestations,
        notes,
    } = chain;
    view! {
        <section class="panel" aria-labelledby="signatures-heading">
            <h2 id="signatures-heading">"Signatures"</h2>
            {if signatures.is_empty() {
                view! { <p class="unsigned"><span class="badge unsigned">"unsigned"</span>" No cosign or notation signature refers to this image."</p> }.into_any()
            } else {
                view! { <Signatures rows=signatures base=base.clone()/> }.into_any()
            }}
            {notes.into_iter().map(|note| view! { <p class="muted small note">{note}</p> }).collect_view()}
        </section>
        <section class="panel" aria-labelledby="sbom-heading">
            <h2 id="sbom-heading">"SBOM"</h2>
            {if sboms.is_empty() {
                view! { <p class="muted">"No SPDX or CycloneDX SBOM is attached to this image."</p> }.into_any()
            } else {
                view! { <Sboms sboms base=base.clone() page=page.clone() query=packages.clone()/> }.into_any()
            }}
        </section>
        <section class="panel" aria-labelledby="attestations-heading">
            <h2 id="attestations-heading">"Attestations"</h2>
            {if attestations.is_empty() {
                view! { <p class="muted">"No in-toto attestation is attached to this image."</p> }.into_any()
            } else {
                view! { <Attestations rows=attestations base/> }.into_any()
            }}
        </section>
    }
}

/// A verdict as a badge and its words.
fn verdict(verification: &Verification) -> impl IntoView + use<> {
    match verification {
        Verification::Verified { key } => view! {
            <span class="badge verified">"verified"</span>
            <span>{format!(" with trusted key {key}")}</span>
        }
        .into_any(),
        Verification::NotVerified { reason } => view! {
            <span class="badge not-verified">"not verified"</span>
            <span>{format!(" {reason}")}</span>
        }
        .into_any(),
    }
}

#[component]
fn Signatures(rows: Vec<SignatureRow>, base: String) -> impl IntoView {
    view! {
        <table class="list signatures">
            <thead><tr>
                <th scope="col">"Scheme"</th>
                <th scope="col">"Signed by"</th>
                <th scope="col">"Verification"</th>
                <th scope="col">"Found as"</th>
                <th scope="col">"Artifact"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|row| {
                    let verified = matches!(row.verification, Verification::Verified { .. });
                    view! {
                        <tr data-verified=verified.to_string()>
                            <td>{row.scheme.clone()}</td>
                            <td>
                                {row.signed_by.clone().map(|who| format!("signed by {who}")).unwrap_or_else(|| "—".into())}
                                {row.signed_at.clone().map(|at| view! { <span class="muted small">{format!(" at {at}")}</span> })}
                            </td>
                            <td class="verification">{verdict(&row.verification)}</td>
                            <td class="mono small">{row.found_as.clone()}</td>
                            <td class="mono"><a href=format!("{base}/images/{}", row.artifact)>{short_digest(&row.artifact)}</a></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Whether a package matches a search (any field, ignoring case).
fn matches(package: &PackageRow, query: &str) -> bool {
    query.is_empty()
        || [
            &package.name,
            &package.version,
            &package.kind,
            &package.licence,
        ]
        .iter()
        .any(|field| field.to_lowercase().contains(query))
}

/// The SBOMs, and one table of their packages searched on the server (`?packages=`), as you
/// type.
#[component]
fn Sboms(sboms: Vec<SbomView>, base: String, page: String, query: String) -> impl IntoView {
    let packages: Vec<PackageRow> = sboms.iter().flat_map(|s| s.packages.clone()).collect();
    let total = packages.len();
    let wanted = query.trim().to_lowercase();
    let found: Vec<PackageRow> = packages
        .into_iter()
        .filter(|p| matches(p, &wanted))
        .collect();
    let count = found.len();
    view! {
        <ul class="sboms">
            {sboms.iter().map(|sbom| view! {
                <li>
                    <strong>{sbom.format.clone()}</strong>
                    {sbom.name.clone().map(|n| format!(" · {n}"))}
                    {format!(" · {} packages · {} · ", sbom.packages.len(), sbom.found_as)}
                    <a class="mono" href=format!("{base}/images/{}", sbom.artifact)>{short_digest(&sbom.artifact)}</a>
                    {sbom.problem.clone().map(|p| view! { <p class="error">{p}</p> })}
                </li>
            }).collect_view()}
        </ul>
        {(total > 0).then(|| view! {
            <div class="toolbar" role="search">
                <SearchField id="sbom-search".to_owned() label="Search packages".to_owned() label_hidden=false
                    placeholder="name, version, type or licence".to_owned()
                    path=page.clone() param="packages".to_owned() value=query.clone()/>
            </div>
            <LiveRegion watch="-" id="packages">
                <p class="muted small" role="status">{format!("{count} of {total} packages")}</p>
                <table class="list packages">
                    <thead><tr>
                        <th scope="col">"Package"</th>
                        <th scope="col">"Version"</th>
                        <th scope="col">"Type"</th>
                        <th scope="col">"Licence"</th>
                    </tr></thead>
                    <tbody>
                        {found.iter().take(SHOWN_PACKAGES).map(|p| view! {
                            <tr>
                                <td>{p.name.clone()}</td>
                                <td class="mono">{p.version.clone()}</td>
                                <td>{p.kind.clone()}</td>
                                <td>{p.licence.clone()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                {(count > SHOWN_PACKAGES).then(|| view! {
                    <p class="muted small">{format!("The first {SHOWN_PACKAGES} are shown: search to narrow them.")}</p>
                })}
            </LiveRegion>
        })}
    }
}

#[component]
fn Attestations(rows: Vec<AttestationRow>, base: String) -> impl IntoView {
    view! {
        <table class="list attestations-table">
            <thead><tr>
                <th scope="col">"Predicate type"</th>
                <th scope="col">"Subjects"</th>
                <th scope="col">"Found as"</th>
                <th scope="col">"Artifact"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|row| view! {
                    <tr>
                        <td class="mono">
                            {if row.predicate_type.is_empty() { "(unknown)".to_owned() } else { row.predicate_type.clone() }}
                            {row.problem.clone().map(|p| view! { <p class="error small">{p}</p> })}
                        </td>
                        <td class="mono small">{row.subjects.iter().map(|s| short_digest(s)).collect::<Vec<_>>().join(", ")}</td>
                        <td class="mono small">{row.found_as.clone()}</td>
                        <td class="mono"><a href=format!("{base}/images/{}", row.artifact)>{short_digest(&row.artifact)}</a></td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}
