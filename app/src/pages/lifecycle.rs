use leptos::prelude::*;
use leptos_meta::Title;

use super::{page_title, param};
use crate::api::immutability::{
    TagRuleForm, TagRuleRow, create_tag_rule, delete_tag_rule, list_tag_rules,
};
use crate::api::prune::PruneResult;
use crate::api::quotas::get_namespace_usage;
use crate::api::retention::{
    RetentionForm, RetentionPolicyRow, create_retention_policy, delete_retention_policy,
    list_retention_policies, run_retention_policy,
};
use crate::api::{ConsoleError, ConsoleResult};
use crate::components::{
    ActionError, Checkbox, ConfirmButton, DeleteButton, ErrorPanel, Loading, PruneResultView,
    TextField, UsageSummary, use_console,
};
use crate::format::{encode, time};

/// (the form, dry run)
type TagRuleInput = (TagRuleForm, bool);
type TagRuleAction = Action<TagRuleInput, ConsoleResult<TagRuleRow>>;
type PolicyAction = Action<RetentionForm, ConsoleResult<RetentionPolicyRow>>;
/// (policy, confirm)
type RunInput = (String, bool);
/// Answers with the policy it ran, so that its result is shown beside it.
type RunAction = Action<RunInput, (String, ConsoleResult<PruneResult>)>;
type Remove = Action<String, ConsoleResult<()>>;

/// A namespace's lifecycle: its usage against its quotas, its tag immutability rules and its
/// retention policies (for its admins; others are told they are not theirs to see).
#[component]
pub fn LifecyclePage() -> impl IntoView {
    let console = use_console();
    let namespace = param("namespace");
    let create_rule: TagRuleAction = Action::new(move |(form, dry_run): &TagRuleInput| {
        let (csrf, form, dry_run) = (console.csrf(), form.clone(), *dry_run);
        async move { create_tag_rule(csrf, namespace.get_untracked(), form, dry_run).await }
    });
    let remove_rule: Remove = Action::new(move |name: &String| {
        let (csrf, name) = (console.csrf(), name.clone());
        async move { delete_tag_rule(csrf, namespace.get_untracked(), name).await }
    });
    let create_policy: PolicyAction = Action::new(move |form: &RetentionForm| {
        let (csrf, form) = (console.csrf(), form.clone());
        async move { create_retention_policy(csrf, namespace.get_untracked(), form).await }
    });
    let remove_policy: Remove = Action::new(move |name: &String| {
        let (csrf, name) = (console.csrf(), name.clone());
        async move { delete_retention_policy(csrf, namespace.get_untracked(), name).await }
    });
    let run: RunAction = Action::new(move |(name, confirm): &RunInput| {
        let (csrf, name, confirm) = (console.csrf(), name.clone(), *confirm);
        async move {
            let result =
                run_retention_policy(csrf, namespace.get_untracked(), name.clone(), confirm).await;
            (name, result)
        }
    });
    // The forms' fields live here, not in the forms: the lists (and the forms with them) are
    // read again after every attempt, and a refused attempt keeps what was typed.
    let rule_fields = TagRuleFields::new();
    let policy_fields = PolicyFields::new();
    Effect::new(move |_| {
        if create_rule.value().with(|v| matches!(v, Some(Ok(_))))
            && !rule_fields.preview.get_untracked()
        {
            rule_fields.clear();
        }
    });
    Effect::new(move |_| {
        if create_policy.value().with(|v| matches!(v, Some(Ok(_)))) {
            policy_fields.clear();
        }
    });
    // Pushes, deletes and runs elsewhere change usage and what rules match.
    let live = console.revision(move |change| change.touches_namespace(&namespace.get_untracked()));
    let usage = Resource::new(
        move || (namespace.get(), run.version().get(), live.get()),
        |(namespace, ..)| get_namespace_usage(namespace),
    );
    let rules = Resource::new(
        move || {
            (
                namespace.get(),
                create_rule.version().get(),
                remove_rule.version().get(),
                run.version().get(),
                live.get(),
            )
        },
        |(namespace, ..)| list_tag_rules(namespace),
    );
    let policies = Resource::new(
        move || {
            (
                namespace.get(),
                create_policy.version().get(),
                remove_policy.version().get(),
                run.version().get(),
                // A scheduled run prunes streams of the namespace: its last run changed.
                live.get(),
            )
        },
        |(namespace, ..)| list_retention_policies(namespace),
    );
    view! {
        <Title text=page_title(move || format!("Lifecycle · {}", namespace.get()))/>
        <nav class="crumbs" aria-label="Breadcrumb">
            <a href="/">"Namespaces"</a>" / "
            <a href=move || format!("/ns/{}", encode(&namespace.get()))>{move || namespace.get()}</a>
        </nav>
        <section class="panel" aria-labelledby="usage-heading">
            <h1>{move || format!("Lifecycle of {}", namespace.get())}</h1>
            <h2 id="usage-heading">"Usage and quotas"</h2>
            <Transition fallback=|| view! { <Loading what="usage"/> }>
                {move || Suspend::new(async move {
                    match usage.await {
                        Ok(usage) => view! { <UsageSummary usage/> }.into_any(),
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <section class="panel" aria-labelledby="rules-heading">
            <h2 id="rules-heading">"Tag immutability rules"</h2>
            <p class="muted">"A tag a rule matches cannot be overwritten by a push, moved, or deleted (with its image, its stream or the namespace)."</p>
            <ActionError action=remove_rule/>
            <Transition fallback=|| view! { <Loading what="immutability rules"/> }>
                {move || Suspend::new(async move {
                    match rules.await {
                        Ok(rows) => view! {
                            <TagRuleTable rows remove=remove_rule/>
                            <NewTagRule create=create_rule fields=rule_fields/>
                        }.into_any(),
                        Err(error) => view! { <NotYours error what="immutability rules" namespace=namespace.get_untracked()/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <section class="panel" aria-labelledby="retention-heading">
            <h2 id="retention-heading">"Retention policies"</h2>
            <p class="muted">"What stays in each governed stream; every other tag goes with its history, and with it the images nothing else names. A dry run lists what would go; nothing is removed until you confirm. Recent pushes (an hour by default) always stay."</p>
            <ActionError action=remove_policy/>
            <Transition fallback=|| view! { <Loading what="retention policies"/> }>
                {move || Suspend::new(async move {
                    match policies.await {
                        Ok(rows) => view! {
                            <PolicyList rows run remove=remove_policy/>
                            <NewPolicy create=create_policy fields=policy_fields/>
                        }.into_any(),
                        Err(error) => view! { <NotYours error what="retention policies" namespace=namespace.get_untracked()/> }.into_any(),
                    }
                })}
            </Transition>
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
fn TagRuleTable(rows: Vec<TagRuleRow>, remove: Remove) -> impl IntoView {
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
                    let name = row.name.clone();
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
                                <DeleteButton what=format!("immutability rule {}", row.name) on_confirm=move || { remove.dispatch(name.clone()); }/>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// The immutability rule form's fields.
#[derive(Clone, Copy)]
struct TagRuleFields {
    name: RwSignal<String>,
    tags: RwSignal<String>,
    exclude_tags: RwSignal<String>,
    streams: RwSignal<String>,
    exclude_streams: RwSignal<String>,
    /// Whether the last attempt was a preview.
    preview: RwSignal<bool>,
}

impl TagRuleFields {
    fn new() -> Self {
        TagRuleFields {
            name: RwSignal::new(String::new()),
            tags: RwSignal::new(String::new()),
            exclude_tags: RwSignal::new(String::new()),
            streams: RwSignal::new(String::new()),
            exclude_streams: RwSignal::new(String::new()),
            preview: RwSignal::new(false),
        }
    }

    fn form(&self) -> TagRuleForm {
        TagRuleForm {
            name: self.name.get_untracked(),
            streams: self.streams.get_untracked(),
            exclude_streams: self.exclude_streams.get_untracked(),
            tags: self.tags.get_untracked(),
            exclude_tags: self.exclude_tags.get_untracked(),
        }
    }

    fn clear(&self) {
        for field in [
            self.name,
            self.tags,
            self.exclude_tags,
            self.streams,
            self.exclude_streams,
        ] {
            field.set(String::new());
        }
    }
}

#[component]
fn NewTagRule(create: TagRuleAction, fields: TagRuleFields) -> impl IntoView {
    let send = move |preview: bool| {
        fields.preview.set(preview);
        create.dispatch((fields.form(), preview));
    };
    view! {
        <h3 id="new-rule-heading">"Add an immutability rule"</h3>
        <form class="stacked-form" aria-labelledby="new-rule-heading" on:submit=move |ev| {
            ev.prevent_default();
            send(false);
        }>
            <TextField id="rule-name" label="Name" value=fields.name placeholder="releases" required=true/>
            <TextField id="rule-tags" label="Tags" value=fields.tags placeholder="v*, release-*" required=true
                hint="Globs, separated by commas or spaces: * within a name, ** across /, {a,b}, [0-9]."/>
            <TextField id="rule-exclude-tags" label="Except tags" value=fields.exclude_tags placeholder="*-rc*"/>
            <TextField id="rule-streams" label="Streams" value=fields.streams placeholder="every stream"/>
            <TextField id="rule-exclude-streams" label="Except streams" value=fields.exclude_streams placeholder="none"/>
            <div class="buttons">
                <button type="button" disabled=move || create.pending().get() on:click=move |_| send(true)>"Preview"</button>
                <button type="submit" class="primary" disabled=move || create.pending().get()>"Add rule"</button>
            </div>
        </form>
        <ActionError action=create/>
        {move || create.value().get().and_then(Result::ok).map(|row| {
            let preview = fields.preview.get_untracked();
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
fn PolicyList(rows: Vec<RetentionPolicyRow>, run: RunAction, remove: Remove) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="empty">"No retention policies: nothing is removed here but by hand."</p> }.into_any();
    }
    view! {
        <div class="policies">
            {rows.into_iter().map(|row| view! { <PolicyView row run remove/> }).collect_view()}
        </div>
    }
    .into_any()
}

#[component]
fn PolicyView(row: RetentionPolicyRow, run: RunAction, remove: Remove) -> impl IntoView {
    let name = row.name.clone();
    let dry_run = {
        let name = name.clone();
        move |_| {
            run.dispatch((name.clone(), false));
        }
    };
    // Copy, for the confirmation made anew with each result.
    let confirm = Callback::new({
        let name = name.clone();
        move |()| {
            run.dispatch((name.clone(), true));
        }
    });
    let result = {
        let name = name.clone();
        move || {
            run.value()
                .get()
                .filter(|(of, _)| *of == name)
                .map(|(_, result)| result)
        }
    };
    let deleting = name.clone();
    let last = row.last_run.as_deref().map(time).map(|at| {
        let removed = row.last_result.as_ref().map_or(String::new(), |r| {
            format!(": {} images, {} history items removed", r.images, r.items)
        });
        format!("{at}{removed}")
    });
    view! {
        <article class="policy" data-policy=row.name.clone()>
            <div class="panel-head">
                <h3>{row.name.clone()}</h3>
                <button type="button" disabled=move || run.pending().get() on:click=dry_run
                    aria-label=format!("Dry run of {}", row.name)>"Dry run"</button>
                <DeleteButton what=format!("retention policy {}", row.name) on_confirm=move || { remove.dispatch(deleting.clone()); }/>
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
            {move || result().map(|result| match result {
                Ok(result) => {
                    let removable = result.dry_run && (result.images > 0 || result.items > 0);
                    view! {
                        <PruneResultView result/>
                        {removable.then(|| view! {
                            <ConfirmButton label="Remove these for real" question="Remove them now? This cannot be undone."
                                yes="Yes, remove" busy=Signal::derive(move || run.pending().get())
                                on_confirm=move || confirm.run(())/>
                        })}
                    }.into_any()
                }
                Err(error) => view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any(),
            })}
        </article>
    }
}

/// The retention policy form's fields.
#[derive(Clone, Copy)]
struct PolicyFields {
    name: RwSignal<String>,
    streams: RwSignal<String>,
    exclude_streams: RwSignal<String>,
    tags: RwSignal<String>,
    exclude_tags: RwSignal<String>,
    keep: RwSignal<String>,
    count: RwSignal<String>,
    untagged: RwSignal<bool>,
    schedule: RwSignal<String>,
}

impl PolicyFields {
    fn new() -> Self {
        PolicyFields {
            name: RwSignal::new(String::new()),
            streams: RwSignal::new(String::new()),
            exclude_streams: RwSignal::new(String::new()),
            tags: RwSignal::new(String::new()),
            exclude_tags: RwSignal::new(String::new()),
            keep: RwSignal::new("pushed".to_owned()),
            count: RwSignal::new("10".to_owned()),
            untagged: RwSignal::new(false),
            schedule: RwSignal::new(String::new()),
        }
    }

    fn form(&self) -> RetentionForm {
        RetentionForm {
            name: self.name.get_untracked(),
            streams: self.streams.get_untracked(),
            exclude_streams: self.exclude_streams.get_untracked(),
            tags: self.tags.get_untracked(),
            exclude_tags: self.exclude_tags.get_untracked(),
            keep: self.keep.get_untracked(),
            count: self.count.get_untracked(),
            untagged: self.untagged.get_untracked(),
            schedule: self.schedule.get_untracked(),
        }
    }

    fn clear(&self) {
        for field in [
            self.name,
            self.streams,
            self.exclude_streams,
            self.tags,
            self.exclude_tags,
            self.schedule,
        ] {
            field.set(String::new());
        }
    }
}

#[component]
fn NewPolicy(create: PolicyAction, fields: PolicyFields) -> impl IntoView {
    let keep = fields.keep;
    let count = fields.count;
    view! {
        <h3 id="new-policy-heading">"Add a retention policy"</h3>
        <form class="stacked-form" aria-labelledby="new-policy-heading" on:submit=move |ev| {
            ev.prevent_default();
            create.dispatch(fields.form());
        }>
            <TextField id="policy-name" label="Name" value=fields.name placeholder="keep-recent" required=true/>
            <TextField id="policy-streams" label="Streams" value=fields.streams placeholder="every stream"
                hint="Globs, separated by commas or spaces."/>
            <TextField id="policy-exclude-streams" label="Except streams" value=fields.exclude_streams placeholder="none"/>
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
            <TextField id="policy-tags" label="Tags" value=fields.tags placeholder="every tag"/>
            <TextField id="policy-exclude-tags" label="Except tags" value=fields.exclude_tags placeholder="none"/>
            <div class="checks">
                <Checkbox id="policy-untagged" label="Also remove images no tag names (earlier revisions, pushes by digest)" value=fields.untagged/>
            </div>
            <TextField id="policy-schedule" label="Schedule" value=fields.schedule placeholder="by hand"
                hint="Cron's five fields in UTC, such as 0 3 * * *; empty to run it by hand only."/>
            <button type="submit" class="primary" disabled=move || create.pending().get()>"Add policy"</button>
        </form>
        <ActionError action=create/>
    }
}
