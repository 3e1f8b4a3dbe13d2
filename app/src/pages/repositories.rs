use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{RepositoryEntry, list_repositories};

/// The registry's repositories with their tags: the console's first page.
#[component]
pub fn RepositoriesPage() -> impl IntoView {
    let repositories = Resource::new(|| (), |_| list_repositories());
    view! {
        <Title text="Repositories"/>
        <section class="panel">
            <h1>"Repositories"</h1>
            <Transition fallback=|| view! { <p class="muted" role="status">"Loading repositories…"</p> }>
                {move || Suspend::new(async move {
                    match repositories.await {
                        Ok(listing) if listing.repositories.is_empty() => {
                            view! { <EmptyRegistry host=listing.registry_host/> }.into_any()
                        }
                        Ok(listing) => view! { <RepositoryTable repositories=listing.repositories/> }.into_any(),
                        Err(err) => view! {
                            <p class="error" role="alert">{err.to_string()}</p>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn RepositoryTable(repositories: Vec<RepositoryEntry>) -> impl IntoView {
    view! {
        <table class="repositories">
            <thead>
                <tr><th scope="col">"Repository"</th><th scope="col">"Tags"</th><th scope="col" class="num">"Manifests"</th></tr>
            </thead>
            <tbody>
                {repositories.into_iter().map(|repo| view! {
                    <tr data-repository=repo.name.clone()>
                        <td class="name">{repo.name.clone()}</td>
                        <td>
                            <div class="tag-list">
                                {repo.tags.into_iter().map(|tag| view! { <span class="tag">{tag}</span> }).collect_view()}
                            </div>
                        </td>
                        <td class="num">{repo.manifest_count}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn EmptyRegistry(host: String) -> impl IntoView {
    view! {
        <div class="empty">
            <p>"No images yet. Push one:"</p>
            <pre><code>{format!("skopeo copy --dest-tls-verify=false docker-archive:image.tar docker://{host}/myproject/app:latest")}</code></pre>
            <pre><code>{format!("podman push --tls-verify=false myimage {host}/myproject/app:latest")}</code></pre>
        </div>
    }
}
