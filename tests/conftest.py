"""Shared pytest fixtures."""

from tests.kubeapi.fixtures import kube_api

__all__ = ["kube_api"]
