use std::collections::HashMap;

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use super::param;
use crate::api::immutability::{TagRuleForm, TagRuleRow, list_tag_rules};
use crate::api::prune::ShownPrune;
use crate::api::quotas::{NamespaceUsage, get_namespace_usage};
use crate::api::retention::{RetentionForm, RetentionPolicyRow, list_retention_policies};
use crate::api::{ConsoleError, ConsoleResult};
use crate::components::{
    ActionError, Change, Checkbox, ConfirmButton, DeleteChangeButton, ErrorPanel, LiveRegion,
    Loading, TextField, UsageSummary, island_action,
};
use crate::format::{encode, time};

/// (the form, dry run)
type TagRuleInput = (TagRuleForm, bool);

/// Which of the lifecycle page's two forms, with its namespace (tuple variants: see
/// [`super::stream::StreamControl`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum LifecycleForm {
    NewTagRule(String),
    NewPolicy(String),
}

/// The lifecycle page's two forms, one island for both: the page fetches one module, not one
/// per form and the small chunks they share (`bench/console.sh`).
#[island(lazy)]
fn LifecycleForms(form: LifecycleForm) -> impl IntoView {
    crate::components::preload_island(LifecycleForms);
    match form {
        LifecycleForm::NewTagRule(namespace) => Either::Left(view! { <NewTagRule namespace/> }),
        LifecycleForm::NewPolicy(namespace) => Either::Right(view! { <NewPolicy namespace/> }),
    }
}

/// A namespace's lifecycle: its usage against its quotas, its tag immutability rules and its
/// retention policies (for its admins; others are told they are not theirs to see).
#[component]
pub fn LifecyclePage() -> impl IntoView {
    let namespace = param("namespace").get_untracked();
    let of_namespace = |namespace: &String| {
        let namespace = namespace.clone();
        move || namespace.clone()
    };
    let usage = Resource::new(of_namespace(&namespace), get_namespace_usage);
    let rules = Resource::new(of_namespace(&namespace), list_tag_rules);
    let policies = Resource::new(of_namespace(&namespace), list_retention_policies);
    let (title, home, crumb) = (
        format!("Lifecycle · {namespace}"),
        format!("/ns/{}", encode(&namespace)),
        namespace.clone(),
    );
    view! {
        <Title text=title/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "<a href=home>{crumb}</a>
        </nav>
        <Suspense fallback=|| view! { <Loading what="the lifecycle"/> }>
            {move || {
                let namespace = namespace.clone();
                Suspend::new(async move {
                    let (usage, rules, policies) = (usage.await, rules.await, policies.await);
                    view! { <Lifecycle namespace usage rules policies/> }
                })
            }}
        </Suspense>
    }
}

/// The page's three sections. Pushes, deletes and runs (here or elsewhere) change usage and
/// what rules match, and a run changes its policy's last run: each list is a live region of
/// the namespace.
#[component]
fn Lifecycle(
    namespace: String,
    usage: ConsoleResult<NamespaceUsage>,
    rules: ConsoleResult<Vec<TagRuleRow>>,
    policies: ConsoleResult<Vec<RetentionPolicyRow>>,
) -> impl IntoView {
    let watch = format!("namespace:{namespace}");
    let usage = match usage {
        Ok(usage) => view! { <UsageSummary usage/> }.into_any(),
        Err(error) => view! { <ErrorPanel error/> }.into_any(),
    };
    let rules = match rules {
        Ok(rows) => {
            let table = view! { <TagRuleTable rows namespace=namespace.clone()/> };
            view! {
                <LiveRegion watch=watch.clone() id="tag-rules">{table}</LiveRegion>
                <h3 id="new-rule-heading">"Add an immutability rule"</h3>
                <LifecycleForms form=LifecycleForm::NewTagRule(namespace.clone())/>
            }
            .into_any()
        }
        Err(error) => {
            view! { <NotYours error what="immutability rules" namespace=namespace.clone()/> }
                .into_any()
        }
    };
    let policies = match policies {
        Ok(rows) => {
            let list = view! { <PolicyList rows namespace=namespace.clone()/> };
            view! {
                <LiveRegion watch=watch.clone() id="retention-policies">{list}</LiveRegion>
                <h3 id="new-policy-heading">"Add a retention policy"</h3>
                <LifecycleForms form=LifecycleForm::NewPolicy(namespace.clone())/>
            }
            .into_any()
        }
        Err(error) => {
            view! { <NotYours error what="retention policies" namespace=namespace.clone()/> }
                .into_any()
        }
    };
    view! {
        <section class="panel" aria-labelledby="usage-heading">
            <h1>{format!("Lifecycle of {namespace}")}</h1>
            <h2 id="usage-heading">"Usage and quotas"</h2>
            <LiveRegion watch id="usage">{usage}</LiveRegion>
        </section>
        <section class="panel" aria-labelledby="rules-heading">
            <h2 id="rules-heading">"Tag immutability rules"</h2>
            <p class="muted">"A tag a rule matches cannot be overwritten by a push, moved, or deleted (with its image, its stream or the namespace)."</p>
            {rules}
        </section>
        <section class="panel" aria-labelledby="retention-heading">
            <h2 id="retention-heading">"Retention policies"</h2>
            <p class="muted">"What stays in each governed stream; every other tag goes with its history, and with it the images nothing else names. A dry run lists what would go; nothing is removed until you confirm. Recent pushes (an hour by default) always stay."</p>
            {policies}
        </section>
    }
}

/// A section the caller may not see (the server refused), or one that is not here (in front of
/// a cluster): said in the section, not as the page's error.
#[component]
fn NotYours(error: ConsoleError, what: &'static str, namespace: String) -> impl IntoView {
    match error {
        ConsoleError::Forbidden(_) => view! {
            <p class="muted not-yours">{format!("Only administrators of {namespace} see and change its {what}.")}</p>
        }
        .into_any(),
        ConsoleError::NotHere(why) => view! { <p class="muted not-here">{why}</p> }.into_any(),
        error => view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any(),
    }
}

/// Globs in words: `every stream`, `a*, b*, not c`.
fn globs(include: &[String], exclude: &[String], every: &str) -> String {
    let mut text = if include.is_empty() || include == ["**"] {
        every.to_owned()
    } else {
        include.join(", ")
    };
    if !exclude.is_empty() {
        text.push_str(&format!(", not {}", exclude.join(", ")));
    }
    text
}

/// The first tags a rule matches, and how many.
fn matching_text(row: &TagRuleRow) -> String {
    let shown: Vec<&str> = row
        .matching_tags
        .iter()
        .take(5)
        .map(String::as_str)
        .collect();
    match row.matching {
        0 => "no tag yet".to_owned(),
        n if n as usize > shown.len() => format!("{n} tags: {}, …", shown.join(", ")),
        1 => format!("1 tag: {}", shown.join(", ")),
        n => format!("{n} tags: {}", shown.join(", ")),
    }
}

#[component]
fn TagRuleTable(rows: Vec<TagRuleRow>, namespace: String) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="empty">"No immutability rules: every tag can be overwritten, moved and deleted by those who may push."</p> }.into_any();
    }
    view! {
        <table class="list rules">
            <thead><tr>
                <th scope="col">"Rule"</th>
                <th scope="col">"Streams"</th>
                <th scope="col">"Tags"</th>
                <th scope="col">"Protects now"</th>
                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|row| {
                    let change = Change::DeleteTagRule { namespace: namespace.clone(), name: row.name.clone() };
                    view! {
                        <tr data-rule=row.name.clone()>
                            <td class="name">
                                {row.name.clone()}
                                {row.disabled.then(|| view! { " "<span class="badge">"disabled"</span> })}
                            </td>
                            <td class="mono">{globs(&row.streams, &row.exclude_streams, "every stream")}</td>
                            <td class="mono">{globs(&row.tags, &row.exclude_tags, "every tag")}</td>
                            <td>{matching_text(&row)}</td>
                            <td class="actions">
                                <DeleteChangeButton change what=format!("immutability rule {}", row.name)/>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// The immutability rule form: a preview says what the rule would protect and stores nothing;
/// a refused rule keeps what was typed; an added one clears the form and the list is read
/// again.
#[component]
fn NewTagRule(namespace: String) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let tags = RwSignal::new(String::new());
    let exclude_tags = RwSignal::new(String::new());
    let streams = RwSignal::new(String::new());
    let exclude_streams = RwSignal::new(String::new());
    // Whether the last attempt was a preview.
    let preview = RwSignal::new(false);
    let create = island_action(move |input: &TagRuleInput| {
        let ((form, dry_run), namespace) = (input.clone(), namespace.clone());
        async move {
            #[cfg(feature = "hydrate")]
            {
                let row = crate::api::immutability::create_tag_rule(
                    crate::components::csrf(),
                    namespace,
                    form,
                    dry_run,
                )
                .await?;
                if !dry_run {
                    crate::components::refresh_page().await;
                }
                Ok(row)
            }
            #[cfg(not(feature = "hydrate"))]
            {
                let _ = (namespace, form, dry_run);
                crate::components::made_in_the_browser::<TagRuleRow>()
            }
        }
    });
    Effect::new(move |_| {
        if create.value().with(|v| matches!(v, Some(Ok(_)))) && !preview.get_untracked() {
            for field in [name, tags, exclude_tags, streams, exclude_streams] {
                field.set(String::new());
            }
        }
    });
    let send = move |dry_run: bool| {
        preview.set(dry_run);
        let form = TagRuleForm {
            name: name.get_untracked(),
            streams: streams.get_untracked(),
            exclude_streams: exclude_streams.get_untracked(),
            tags: tags.get_untracked(),
            exclude_tags: exclude_tags.get_untracked(),
        };
        create.dispatch((form, dry_run));
    };
    view! {
        <form class="stacked-form" aria-labelledby="new-rule-heading" on:submit=move |ev| {
            ev.prevent_default();
            send(false);
        }>
            <TextField id="rule-name" label="Name" value=name placeholder="releases" required=true/>
            <TextField id="rule-tags" label="Tags" value=tags placeholder="v*, release-*" required=true
                hint="Globs, separated by commas or spaces: * within a name, ** across /, {a,b}, [0-9]."/>
            <TextField id="rule-exclude-tags" label="Except tags" value=exclude_tags placeholder="*-rc*"/>
            <TextField id="rule-streams" label="Streams" value=streams placeholder="every stream"/>
            <TextField id="rule-exclude-streams" label="Except streams" value=exclude_streams placeholder="none"/>
            <div class="buttons">
                <button type="button" disabled=move || create.pending().get() on:click=move |_| send(true)>"Preview"</button>
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Add rule"</button>
            </div>
        </form>
        <ActionError action=create/>
        {move || create.value().get().and_then(Result::ok).map(|row| {
            let preview = preview.get_untracked();
            let matched = matching_text(&row);
            view! {
                <p class="rule-outcome" role="status" data-preview=preview.to_string()>
                    {if preview {
                        format!("Preview of {}: it would make {matched} immutable. Nothing is stored until you add it.", row.name)
                    } else {
                        format!("Added {}: it makes {matched} immutable.", row.name)
                    }}
                </p>
            }
        })}
    }
}

#[component]
fn PolicyList(rows: Vec<RetentionPolicyRow>, namespace: String) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="empty">"No retention policies: nothing is removed here but by hand."</p> }.into_any();
    }
    view! {
        <div class="policies">
            {rows.into_iter().map(|row| view! { <PolicyView row namespace=namespace.clone()/> }).collect_view()}
        </div>
    }
    .into_any()
}

#[component]
fn PolicyView(row: RetentionPolicyRow, namespace: String) -> impl IntoView {
    let last = row.last_run.as_deref().map(time).map(|at| {
        let removed = row.last_result.as_ref().map_or(String::new(), |r| {
            format!(": {} images, {} history items removed", r.images, r.items)
        });
        format!("{at}{removed}")
    });
    let change = Change::DeleteRetentionPolicy {
        namespace: namespace.clone(),
        name: row.name.clone(),
    };
    view! {
        <article class="policy" data-policy=row.name.clone()>
            <div class="panel-head">
                <h3>{row.name.clone()}</h3>
                <DryRunButton namespace=namespace.clone() policy=row.name.clone()/>
                <DeleteChangeButton change what=format!("retention policy {}", row.name)/>
            </div>
            <dl class="facts">
                <dt>"Streams"</dt><dd class="mono">{row.streams.clone()}</dd>
                <dt>"Keeps"</dt>
                <dd>
                    {if row.rules.is_empty() {
                        view! { "every tag (no rules)" }.into_any()
                    } else {
                        view! { <ul class="plain">{row.rules.iter().map(|rule| view! { <li>{rule.clone()}</li> }).collect_view()}</ul> }.into_any()
                    }}
                </dd>
                <dt>"Untagged images"</dt>
                <dd>{if row.untagged { "removed (earlier revisions, pushes by digest)" } else { "kept" }}</dd>
                <dt>"Runs"</dt>
                <dd>{match (&row.schedule, row.suspended) {
                    (Some(schedule), false) => format!("on schedule {schedule} (UTC)"),
                    (Some(schedule), true) => format!("suspended (schedule {schedule})"),
                    (None, _) => "by hand".to_owned(),
                }}</dd>
                <dt>"Last run"</dt><dd>{last.unwrap_or_else(|| "never".to_owned())}</dd>
            </dl>
            <RunResult namespace policy=row.name.clone()/>
        </article>
    }
}

/// A retention policy's last run on this page: running, and what it answered.
#[derive(Debug, Clone, Default)]
struct Run {
    running: bool,
    result: Option<ConsoleResult<ShownPrune>>,
}

/// The runs of the page's policies, by policy, shared by the islands of each policy: its dry
/// run button (in its head) and its result (below its facts). Both are made anew when the
/// policies are read again (after a confirmed run above all), and the result outlives them.
fn runs() -> ArcRwSignal<HashMap<String, Run>> {
    #[cfg(feature = "hydrate")]
    {
        thread_local! {
            static RUNS: ArcRwSignal<HashMap<String, Run>> = ArcRwSignal::new(HashMap::new());
        }
        RUNS.with(Clone::clone)
    }
    // The server renders every policy without a run.
    #[cfg(not(feature = "hydrate"))]
    ArcRwSignal::new(HashMap::new())
}

/// Runs `policy`: a dry run, or (`confirm`) for real, after which the page is read again.
fn run_policy(namespace: String, policy: String, confirm: bool) {
    #[cfg(feature = "hydrate")]
    {
        let runs = runs();
        runs.update(|runs| runs.entry(policy.clone()).or_default().running = true);
        leptos::task::spawn_local(async move {
            let result = crate::api::retention::run_retention_policy(
                crate::components::csrf(),
                namespace,
                policy.clone(),
                confirm,
            )
            .await;
            let removed = confirm && result.is_ok();
            runs.update(|runs| {
                runs.insert(
                    policy,
                    Run {
                        running: false,
                        result: Some(result),
                    },
                );
            });
            if removed {
                crate::components::refresh_page().await;
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (namespace, policy, confirm);
}

/// Whether `policy` is running now.
fn running(runs: &ArcRwSignal<HashMap<String, Run>>, policy: &str) -> bool {
    runs.with(|runs| runs.get(policy).is_some_and(|run| run.running))
}

/// Lists what `policy` would remove.
#[island(lazy)]
fn DryRunButton(namespace: String, policy: String) -> impl IntoView {
    crate::components::preload_island(DryRunButton);
    let runs = runs();
    let label = format!("Dry run of {policy}");
    let busy = policy.clone();
    view! {
        <button type="button" disabled=move || running(&runs, &busy) aria-label=label
            on:click=move |_| run_policy(namespace.clone(), policy.clone(), false)>"Dry run"</button>
    }
}

/// What the last run of `policy` removed, or would remove (then with the button that removes
/// it for real).
#[island(lazy)]
fn RunResult(namespace: String, policy: String) -> impl IntoView {
    crate::components::preload_island(RunResult);
    let runs = runs();
    // A result from before the policies were read again is shown once this island is
    // hydrated: the server rendered none.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let busy = {
        let (runs, policy) = (runs.clone(), policy.clone());
        Signal::derive(move || running(&runs, &policy))
    };
    move || {
        if !hydrated.get() {
            return None;
        }
        let result = runs.with(|runs| runs.get(&policy).and_then(|run| run.result.clone()))?;
        let (namespace, policy) = (namespace.clone(), policy.clone());
        Some(match result {
            Ok(shown) => view! {
                <div inner_html=shown.html></div>
                {shown.removable.then(|| view! {
                    <ConfirmButton label="Remove these for real" question="Remove them now? This cannot be undone."
                        yes="Yes, remove" busy
                        on_confirm=move || run_policy(namespace.clone(), policy.clone(), true)/>
                })}
            }
            .into_any(),
            Err(error) => {
                view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any()
            }
        })
    }
}

/// The retention policy form: a refused policy keeps what was typed; an added one clears the
/// names and globs, and the list is read again.
#[component]
fn NewPolicy(namespace: String) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let streams = RwSignal::new(String::new());
    let exclude_streams = RwSignal::new(String::new());
    let tags = RwSignal::new(String::new());
    let exclude_tags = RwSignal::new(String::new());
    let keep = RwSignal::new("pushed".to_owned());
    let count = crate::components::typed_field("policy-count", "10");
    let untagged = RwSignal::new(false);
    let schedule = RwSignal::new(String::new());
    let create = island_action(move |form: &RetentionForm| {
        let (form, namespace) = (form.clone(), namespace.clone());
        async move {
            #[cfg(feature = "hydrate")]
            {
                crate::api::retention::create_retention_policy(
                    crate::components::csrf(),
                    namespace,
                    form,
                )
                .await?;
                crate::components::refresh_page().await;
                Ok(())
            }
            #[cfg(not(feature = "hydrate"))]
            {
                let _ = (namespace, form);
                crate::components::made_in_the_browser::<()>()
            }
        }
    });
    Effect::new(move |_| {
        if create.value().with(|v| matches!(v, Some(Ok(_)))) {
            for field in [name, streams, exclude_streams, tags, exclude_tags, schedule] {
                field.set(String::new());
            }
        }
    });
    view! {
        <form class="stacked-form" aria-labelledby="new-policy-heading" on:submit=move |ev| {
            ev.prevent_default();
            create.dispatch(RetentionForm {
                name: name.get_untracked(),
                streams: streams.get_untracked(),
                exclude_streams: exclude_streams.get_untracked(),
                tags: tags.get_untracked(),
                exclude_tags: exclude_tags.get_untracked(),
                keep: keep.get_untracked(),
                count: count.get_untracked(),
                untagged: untagged.get_untracked(),
                schedule: schedule.get_untracked(),
            });
        }>
            <TextField id="policy-name" label="Name" value=name placeholder="keep-recent" required=true/>
            <TextField id="policy-streams" label="Streams" value=streams placeholder="every stream"
                hint="Globs, separated by commas or spaces."/>
            <TextField id="policy-exclude-streams" label="Except streams" value=exclude_streams placeholder="none"/>
            <label for="policy-keep">"Keep"</label>
            <div class="field keep">
                <select id="policy-keep" prop:value=keep on:change=move |ev| keep.set(event_target_value(&ev))>
                    <option value="pushed">"the N most recently pushed tags"</option>
                    <option value="pulled">"the N most recently pulled tags"</option>
                    <option value="pushed_days">"tags pushed within N days"</option>
                    <option value="pulled_days">"tags pulled within N days"</option>
                    <option value="always">"the tags, always"</option>
                </select>
                <label for="policy-count">"N"</label>
                <input id="policy-count" class="count" inputmode="numeric"
                    disabled=move || keep.get() == "always"
                    prop:value=count on:input=move |ev| count.set(event_target_value(&ev))/>
            </div>
            <TextField id="policy-tags" label="Tags" value=tags placeholder="every tag"/>
            <TextField id="policy-exclude-tags" label="Except tags" value=exclude_tags placeholder="none"/>
            <div class="checks">
                <Checkbox id="policy-untagged" label="Also remove images no tag names (earlier revisions, pushes by digest)" value=untagged/>
            </div>
            <TextField id="policy-schedule" label="Schedule" value=schedule placeholder="by hand"
                hint="Cron's five fields in UTC, such as 0 3 * * *; empty to run it by hand only."/>
            <button type="submit" class="primary" disabled=move || create.pending().get()>"Add policy"</button>
        </form>
        <ActionError action=create/>
    }
}
