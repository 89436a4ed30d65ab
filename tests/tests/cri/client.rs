//! A blocking CRI client (what the kubelet speaks): tonic over containerd's Unix socket, each
//! call run to completion on a single-threaded tokio runtime.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Longest any single CRI call may take: a hang fails the test.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Cri {
    rt: tokio::runtime::Runtime,
    /// How long a call may take (shorter while cleaning up after a failure).
    deadline: std::cell::Cell<Duration>,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

/// A CRI call's error as one line: the gRPC code and containerd's message.
pub type CriResult<T> = Result<T, String>;

impl Cri {
    /// Connects to `sock` (the channel connects lazily: the first call tells whether anyone
    /// listens).
    pub fn connect(sock: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let sock: PathBuf = sock.into();
        // The channel spawns its worker on the runtime it is made in.
        let _in_rt = rt.enter();
        // The URI is a placeholder: the connector ignores it and dials the socket.
        let channel =
            Endpoint::from_static("http://[::]:50051").connect_with_connector_lazy(
                tower::service_fn(move |_: Uri| {
                    let sock = sock.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(sock).await?))
                    }
                }),
            );
        Cri {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
            rt,
            deadline: CALL_TIMEOUT.into(),
        }
    }

    /// From now on calls give up after `deadline`.
    pub fn set_deadline(&self, deadline: Duration) {
        self.deadline.set(deadline);
    }

    fn call<T, F>(&self, f: F) -> CriResult<T>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = self.deadline.get();
        // The timer must be made inside the runtime.
        match self
            .rt
            .block_on(async { tokio::time::timeout(deadline, f).await })
        {
            Ok(r) => r
                .map(tonic::Response::into_inner)
                .map_err(|s| format!("{:?}: {}", s.code(), s.message())),
            Err(_) => Err(format!("no answer within {deadline:?}")),
        }
    }

    pub fn status(&self) -> CriResult<StatusResponse> {
        self.call(
            self.runtime
                .clone()
                .status(StatusRequest { verbose: false }),
        )
    }

    pub fn image_status(&self, image: &str) -> CriResult<Option<Image>> {
        let req = ImageStatusRequest {
            image: Some(image_spec(image)),
            verbose: false,
        };
        self.call(self.images.clone().image_status(req))
            .map(|r| r.image)
    }

    pub fn run_pod(&self, config: &PodSandboxConfig, handler: &str) -> CriResult<String> {
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        };
        self.call(self.runtime.clone().run_pod_sandbox(req))
            .map(|r| r.pod_sandbox_id)
    }

    /// The pod's status and containerd's verbose info (JSON under the key "info").
    pub fn pod_status(&self, id: &str) -> CriResult<PodSandboxStatusResponse> {
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        };
        self.call(self.runtime.clone().pod_sandbox_status(req))
    }

    /// The network namespace path containerd gave the sandbox (from its verbose status).
    pub fn netns_path(&self, sandbox: &str) -> Option<String> {
        let status = self.pod_status(sandbox).ok()?;
        let info: serde_json::Value = serde_json::from_str(status.info.get("info")?).ok()?;
        let namespaces = info["runtimeSpec"]["linux"]["namespaces"].as_array()?;
        namespaces
            .iter()
            .find(|ns| ns["type"] == "network")
            .and_then(|ns| ns["path"].as_str())
            .map(str::to_string)
    }

    pub fn list_pods(&self) -> CriResult<Vec<PodSandbox>> {
        self.call(
            self.runtime
                .clone()
                .list_pod_sandbox(ListPodSandboxRequest { filter: None }),
        )
        .map(|r| r.items)
    }

    pub fn stop_pod(&self, id: &str) -> CriResult<()> {
        let req = StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.call(self.runtime.clone().stop_pod_sandbox(req))
            .map(drop)
    }

    pub fn remove_pod(&self, id: &str) -> CriResult<()> {
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.call(self.runtime.clone().remove_pod_sandbox(req))
            .map(drop)
    }

    pub fn create_container(
        &self,
        pod: &str,
        config: ContainerConfig,
        pod_config: &PodSandboxConfig,
    ) -> CriResult<String> {
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(config),
            sandbox_config: Some(pod_config.clone()),
        };
        self.call(self.runtime.clone().create_container(req))
            .map(|r| r.container_id)
    }

    pub fn start_container(&self, id: &str) -> CriResult<()> {
        let req = StartContainerRequest {
            container_id: id.into(),
        };
        self.call(self.runtime.clone().start_container(req))
            .map(drop)
    }

    pub fn container_status(&self, id: &str) -> CriResult<ContainerStatus> {
        let req = ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        };
        self.call(self.runtime.clone().container_status(req))?
            .status
            .ok_or_else(|| format!("no status for container {id}"))
    }

    /// Runs `cmd` in the container; a command running past `timeout_s` fails.
    pub fn exec_sync(&self, id: &str, cmd: &[&str], timeout_s: i64) -> CriResult<ExecSyncResponse> {
        let req = ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout_s,
        };
        self.call(self.runtime.clone().exec_sync(req))
    }
}

pub fn image_spec(image: &str) -> ImageSpec {
    ImageSpec {
        image: image.into(),
        ..Default::default()
    }
}
