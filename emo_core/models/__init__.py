"""Model definitions in torch (networks whose published weights we read ourselves)."""
