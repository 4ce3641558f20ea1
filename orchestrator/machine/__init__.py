"""Setting up a machine: a Docker engine, a parent image, the registered stack, the local swarm.

- `engine`: the run-time connection to a Docker engine (`connect`,
  `ensure_engine`), with advice fitting rootless Docker, Podman, docker
  contexts and the ``docker`` group; `engine_facts` judges what kind answers;
- `root_setup`: root-only set-up on Debian without systemd (apt packages,
  starting the system dockerd); `commands`, `processes` and `mounts` are the
  set-up tools' view of the machine's programs, processes and mounts;
- `base_image`: ZenML's parent image for step containers, built offline if
  needed, FROM a Debian base made with debootstrap (`debian_base`) when no
  registry answers; `image_labels` recognises both by their labels;
- `stack`: the four reference commands and `register_stack()`;
- `swarm` (with `swarm_model` and `netns_relay`): a local two-node Docker Swarm;
- `zenml_server` and `local_store`: ZenML's local server and empty store.
"""
