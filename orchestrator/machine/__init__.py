"""Setting up a machine: a Docker engine, a parent image, the registered stack.

- `engine`: connect to a Docker engine, or install and start one (Debian, root);
- `base_image`: ZenML's parent image for step containers, built offline if needed;
- `stack`: the four reference commands and `register_stack()`.
"""
