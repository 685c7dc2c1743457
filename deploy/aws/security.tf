# Security groups, as narrow as the design allows. Nothing opens the admin
# listener (127.0.0.1:9901 on each instance): operators reach it through
# SSM Session Manager port forwarding (deploy/README.md), so no rule names
# port 9901 and no SSH port is open either.

locals {
  nlb = var.load_balancer == "nlb"
  # QUIC routed by server ID: a TCP_QUIC listener, which AWS allows only on
  # an NLB without a security group; the instances' own group then admits
  # the clients, whose address the NLB keeps on TCP and UDP alike.
  quic = local.nlb && var.http3 && var.quic_listener
  # What the load balancer listens on, for clients.
  lb_ingress = local.nlb ? concat(
    [{ port = 80, proto = "tcp" }, { port = 443, proto = "tcp" }],
    var.http3 ? [{ port = 443, proto = "udp" }] : []
  ) : [{ port = 80, proto = "tcp" }, { port = 443, proto = "tcp" }]
  # What the instances listen on, for the load balancer: the traffic ports
  # and (nlb) the health checks on 80; the alb sends everything to 8080.
  instance_ports = local.nlb ? [80, 443] : [8080]
  client_rules = {
    for pair in setproduct(local.lb_ingress, var.client_cidrs) :
    "${pair[0].proto}-${pair[0].port}-${pair[1]}" => { port = pair[0].port, proto = pair[0].proto, cidr = pair[1] }
  }
}

resource "aws_security_group" "lb" {
  count       = local.quic ? 0 : 1
  name        = "${var.name}-lb"
  description = "sekisho load balancer: clients in, instances out"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "lb_clients" {
  for_each          = local.quic ? {} : local.client_rules
  security_group_id = aws_security_group.lb[0].id
  ip_protocol       = each.value.proto
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_egress_rule" "lb_to_instances" {
  for_each                     = local.quic ? toset([]) : toset([for p in local.instance_ports : tostring(p)])
  security_group_id            = aws_security_group.lb[0].id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
  referenced_security_group_id = aws_security_group.instances.id
}

resource "aws_security_group" "instances" {
  name        = "${var.name}-instances"
  description = "sekisho replicas: traffic from the load balancer only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "instances_from_lb" {
  for_each                     = local.quic ? toset([]) : toset([for p in local.instance_ports : tostring(p)])
  security_group_id            = aws_security_group.instances.id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
  referenced_security_group_id = aws_security_group.lb[0].id
}

# quic_listener: no load balancer group to refer to. TCP 443 comes from
# the clients themselves (a TCP_QUIC target group keeps their address);
# port 80, traffic and health checks alike, from the NLB's nodes in the VPC.
resource "aws_vpc_security_group_ingress_rule" "instances_clients" {
  for_each          = local.quic ? toset(var.client_cidrs) : toset([])
  security_group_id = aws_security_group.instances.id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "instances_from_nlb_nodes" {
  count             = local.quic ? 1 : 0
  security_group_id = aws_security_group.instances.id
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = var.vpc_cidr
}

# HTTP/3: the NLB keeps the client's address on UDP (it cannot be turned
# off), so QUIC packets arrive from the clients themselves.
resource "aws_vpc_security_group_ingress_rule" "instances_quic" {
  for_each          = local.nlb && var.http3 ? toset(var.client_cidrs) : toset([])
  security_group_id = aws_security_group.instances.id
  ip_protocol       = "udp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

# Out: the application servers, Redis, ACME, SSM, the binary's download.
resource "aws_vpc_security_group_egress_rule" "instances_out" {
  security_group_id = aws_security_group.instances.id
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_security_group" "redis" {
  name        = "${var.name}-redis"
  description = "ElastiCache: the sekisho instances only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_instances" {
  security_group_id            = aws_security_group.redis.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.instances.id
}
