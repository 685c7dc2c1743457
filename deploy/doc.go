// Package deploy holds no code: its tests check the deployment files kept
// beside it (deploy/Dockerfile, the top-level docker-compose.yml and the
// configs it mounts from deploy/compose, the Terraform in deploy/aws and
// the systemd unit in deploy/systemd), so a change that breaks one fails
// `make test` rather than a rollout.
package deploy
