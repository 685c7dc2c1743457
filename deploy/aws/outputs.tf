output "load_balancer_dns_name" {
  description = "Point the site's DNS name here (a CNAME or an alias record)."
  value       = aws_lb.main.dns_name
}

output "redis_primary_endpoint" {
  value = aws_elasticache_replication_group.redis.primary_endpoint_address
}

output "autoscaling_group" {
  value = aws_autoscaling_group.sekisho.name
}
