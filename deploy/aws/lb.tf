# The load balancer in front of the replicas: an NLB (layer 4, TLS ends on
# sekisho, PROXY v2 carries the client; with quic_listener, the NLB keeps
# the client's address instead and routes QUIC by server ID) or an ALB
# (TLS ends on the ALB, X-Forwarded-For carries the client). Both health-check /readyz, which
# turns 503 for drain_grace when an instance is told to stop, so the load
# balancer takes it out before its listeners close.

resource "aws_lb" "main" {
  name                             = "${var.name}-${var.load_balancer}"
  load_balancer_type               = local.nlb ? "network" : "application"
  internal                         = false
  subnets                          = aws_subnet.public[*].id
  security_groups                  = local.quic ? null : [aws_security_group.lb[0].id] # none allowed with a QUIC listener
  enable_cross_zone_load_balancing = true
  drop_invalid_header_fields       = local.nlb ? null : true
}

# ---- nlb ----

# TCP 80: PROXY v2 on every connection, health checks included (as LOCAL).
# An instance target group keeps the client's address by default; off, the
# connections come from the NLB's own addresses in the VPC, the peers
# sekisho believes a PROXY header from.
resource "aws_lb_target_group" "nlb_http" {
  count                = local.nlb ? 1 : 0
  name                 = "${var.name}-tcp80"
  port                 = 80
  protocol             = "TCP"
  vpc_id               = aws_vpc.main.id
  target_type          = "instance"
  proxy_protocol_v2    = true
  preserve_client_ip   = false
  deregistration_delay = 30
  health_check {
    protocol            = "HTTP"
    port                = "80"
    path                = "/readyz"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

# 443: TCP (TLS passes through to sekisho) and, with http3, UDP on the same
# port, which an NLB only allows as one listener and target group:
# - TCP alone: PROXY v2, from the NLB's own addresses, as on 80.
# - TCP_UDP hashes each UDP flow's addresses, so a QUIC client that changes
#   address lands on another replica, which knows nothing of its
#   connection.
# - TCP_QUIC (quic_listener) routes QUIC by the server ID in the connection
#   ID, which each instance registers itself under (user data) and sekisho
#   writes into its connection IDs. Its targets carry a server ID each, so
#   the Auto Scaling group does not attach them.
# TCP_UDP and TCP_QUIC always keep the client's address (AWS allows no
# other way), on TCP as on UDP: the client is the socket's peer, and no
# PROXY header is sent (QUIC has none).
resource "aws_lb_target_group" "nlb_https" {
  count                = local.nlb ? 1 : 0
  name                 = "${var.name}-${local.https_protocol == "TCP_UDP" ? "tcpudp" : lower(local.https_protocol)}443"
  port                 = 443
  protocol             = local.https_protocol
  vpc_id               = aws_vpc.main.id
  target_type          = "instance"
  proxy_protocol_v2    = local.https_proxy
  preserve_client_ip   = local.https_proxy ? false : null
  deregistration_delay = 30
  health_check {
    protocol            = "HTTP"
    port                = "80"
    path                = "/readyz"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "nlb_http" {
  count             = local.nlb ? 1 : 0
  load_balancer_arn = aws_lb.main.arn
  port              = 80
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.nlb_http[0].arn
  }
}

resource "aws_lb_listener" "nlb_https" {
  count             = local.nlb ? 1 : 0
  load_balancer_arn = aws_lb.main.arn
  port              = 443
  protocol          = local.https_protocol
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.nlb_https[0].arn
  }
}

# ---- alb ----

resource "aws_lb_target_group" "alb" {
  count                = local.nlb ? 0 : 1
  name                 = "${var.name}-http8080"
  port                 = 8080
  protocol             = "HTTP"
  vpc_id               = aws_vpc.main.id
  target_type          = "instance"
  deregistration_delay = 30
  health_check {
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = "/readyz"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
    matcher             = "200"
  }
}

resource "aws_lb_listener" "alb_http" {
  count             = local.nlb ? 0 : 1
  load_balancer_arn = aws_lb.main.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type = "redirect"
    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "alb_https" {
  count             = local.nlb ? 0 : 1
  load_balancer_arn = aws_lb.main.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.alb[0].arn
  }
}

locals {
  https_protocol = local.quic ? "TCP_QUIC" : var.http3 ? "TCP_UDP" : "TCP"
  https_proxy    = local.https_protocol == "TCP"
  # What the Auto Scaling group registers its instances in: all but the
  # TCP_QUIC group, where each registers itself under its server ID.
  target_group_arns = local.nlb ? concat([aws_lb_target_group.nlb_http[0].arn], local.quic ? [] : [aws_lb_target_group.nlb_https[0].arn]) : [aws_lb_target_group.alb[0].arn]
  quic_target_group = local.quic ? aws_lb_target_group.nlb_https[0].arn : ""
}
