use leptos::prelude::*;

use crate::api::quotas::{LimitRow, NamespaceUsage, QuotaBar};
use crate::format::size;

/// A resource's name for people.
fn resource_label(resource: &str) -> &str {
    match resource {
        "berth.io/storage" => "Storage",
        "openshift.io/imagestreams" => "Image streams",
        other => other,
    }
}

/// An amount of a limited resource: a size, or a count.
fn amount(value: u64, bytes: bool) -> String {
    if bytes {
        size(value)
    } else {
        value.to_string()
    }
}

/// One quota as a meter with its text (`1.2 GB of 5.4 GB`): what is used of the limit.
#[component]
pub fn QuotaMeter(bar: QuotaBar) -> impl IntoView {
    let text = format!(
        "{} of {}",
        amount(bar.used, bar.bytes),
        amount(bar.hard, bar.bytes)
    );
    let share = if bar.hard == 0 {
        100.0
    } else {
        (bar.used as f64 / bar.hard as f64 * 100.0).min(100.0)
    };
    let state = if bar.used >= bar.hard {
        "full"
    } else if share >= 90.0 {
        "near"
    } else {
        "ok"
    };
    let label_id = format!(
        "quota-{}-{}",
        bar.quota,
        bar.resource.replace(['/', '.'], "-")
    );
    let label = resource_label(&bar.resource).to_owned();
    view! {
        <div class="quota" data-quota=bar.quota.clone() data-resource=bar.resource.clone() data-state=state>
            <div class="quota-head">
                <span class="quota-label" id=label_id.clone()>{label}</span>
                <span class="quota-text">{text.clone()}</span>
            </div>
            <div class="meter" role="meter" aria-labelledby=label_id
                aria-valuemin="0" aria-valuemax=bar.hard.to_string()
                aria-valuenow=bar.used.min(bar.hard).to_string() aria-valuetext=text>
                // A shape's width, not a style attribute: the pages' policy allows only the
                // site's stylesheet.
                <svg class="meter-fill" aria-hidden="true" viewBox="0 0 100 1" preserveAspectRatio="none">
                    <rect width=format!("{share:.1}") height="1"/>
                </svg>
            </div>
            <p class="muted small">
                {format!("ResourceQuota {}: {} = {}", bar.quota, bar.resource, bar.hard_text)}
                {(state == "full").then_some(" · full: pushes that add to it are refused")}
            </p>
        </div>
    }
}

/// A limit range's bound, in words.
fn limit_text(limit: &LimitRow) -> String {
    let max = amount(limit.max, limit.bytes);
    match (limit.limit_type.as_str(), limit.resource.as_str()) {
        ("openshift.io/Image", "storage") => format!("Each image pushed: at most {max}"),
        ("openshift.io/ImageStream", "openshift.io/images") => {
            format!("Each image stream: at most {max} images")
        }
        ("openshift.io/ImageStream", "openshift.io/image-tags") => {
            format!("Each image stream: at most {max} tags")
        }
        (limit_type, resource) => format!("{limit_type} {resource}: at most {max}"),
    }
}

/// What a namespace uses (bytes, streams, images) against its quotas, and its limit ranges.
#[component]
pub fn UsageSummary(usage: NamespaceUsage) -> impl IntoView {
    let unknown = || "—".to_owned();
    let quotas = usage.quotas.clone();
    let limits = usage.limits.clone();
    view! {
        <div class="usage">
            <dl class="facts usage-facts">
                <dt>"Stored"</dt>
                <dd data-usage="bytes">{usage.bytes.map(size).unwrap_or_else(unknown)}
                    <span class="muted small">" (each layer once, as the storage quota counts)"</span></dd>
                <dt>"Image streams"</dt>
                <dd data-usage="streams">{usage.streams.map(|n| n.to_string()).unwrap_or_else(unknown)}</dd>
                <dt>"Images"</dt>
                <dd data-usage="images">{usage.images.map(|n| n.to_string()).unwrap_or_else(unknown)}</dd>
            </dl>
            {if quotas.is_empty() {
                view! { <p class="muted no-quota">"No quota: nothing limits this namespace's storage or image streams."</p> }.into_any()
            } else {
                view! {
                    <div class="quotas">
                        {quotas.into_iter().map(|bar| view! { <QuotaMeter bar/> }).collect_view()}
                    </div>
                }.into_any()
            }}
            {(!limits.is_empty()).then(|| view! {
                <ul class="limits">
                    {limits.into_iter().map(|limit| view! {
                        <li data-limit=limit.resource.clone()>
                            {limit_text(&limit)}
                            <span class="muted small">{format!(" (LimitRange {}: {})", limit.range, limit.max_text)}</span>
                        </li>
                    }).collect_view()}
                </ul>
            })}
        </div>
    }
}
