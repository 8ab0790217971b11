"""``raftkube bench``: load generators and etcd-benchmark-style reports."""
