# ElastiCache Redis for what the replicas share: stick tables, rate-limit
# counts, ACME accounts and certificates, TLS session-ticket keys. A primary
# and a replica in the two AZs with automatic failover, TLS in transit, an
# auth token, encrypted at rest. It holds private keys: noeviction, so a
# full cache refuses writes rather than dropping a certificate.

resource "random_password" "redis" {
  length  = 48
  special = false
}

# The instances read the token from here at boot (IAM, below); it is never
# in the user data, which anyone with ec2:DescribeInstanceAttribute can read.
resource "aws_ssm_parameter" "redis_auth" {
  name  = "/${var.name}/redis-auth-token"
  type  = "SecureString"
  value = random_password.redis.result
}

resource "aws_elasticache_subnet_group" "redis" {
  name       = "${var.name}-redis"
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_elasticache_parameter_group" "redis" {
  name   = "${var.name}-redis7"
  family = "redis7"
  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id        = "${var.name}-redis"
  description                 = "sekisho shared state"
  engine                      = "redis"
  engine_version              = "7.1"
  node_type                   = var.redis_node_type
  port                        = 6379
  num_cache_clusters          = 2
  automatic_failover_enabled  = true
  multi_az_enabled            = true
  preferred_cache_cluster_azs = local.azs
  transit_encryption_enabled  = true
  at_rest_encryption_enabled  = true
  auth_token                  = random_password.redis.result
  parameter_group_name        = aws_elasticache_parameter_group.redis.name
  subnet_group_name           = aws_elasticache_subnet_group.redis.name
  security_group_ids          = [aws_security_group.redis.id]
  apply_immediately           = false
}
