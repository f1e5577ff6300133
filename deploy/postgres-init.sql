-- One database per service, all owned by the mesh role (compose and Kubernetes set-ups).
CREATE DATABASE router OWNER mesh;
CREATE DATABASE notifier OWNER mesh;
CREATE DATABASE oversight OWNER mesh;
CREATE DATABASE intake OWNER mesh;
