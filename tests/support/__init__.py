"""Helpers shared by the test suite and the benchmark: throwaway real services."""

from tests.support.services import MariaDbServer, MotoS3, SeaweedS3, ServiceError, free_port

__all__ = ["MariaDbServer", "MotoS3", "SeaweedS3", "ServiceError", "free_port"]
