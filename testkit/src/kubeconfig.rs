//! A kubeconfig for a fake apiserver served over HTTP, for clients that need a
//! file (`cube opi --backend k8s --kubeconfig …`, `cube up --kubeconfig …`).

/// The text of a kubeconfig whose only cluster is `server_url`
/// (e.g. `http://127.0.0.1:41234`), with a dummy token.
pub fn kubeconfig(server_url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
         clusters: [{{name: fake, cluster: {{server: '{server_url}'}}}}]\n\
         users: [{{name: fake, user: {{token: fake}}}}]\n\
         contexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]\n"
    )
}
