# The sekisho replicas: an Auto Scaling group across both AZs, registered
# in the load balancer's target groups and replaced when their /readyz
# health check fails (health_check_type ELB). A change to the launch
# template (a new binary, a new config) rolls through the group one
# instance at a time, keeping at least one per AZ in service.

data "aws_ssm_parameter" "al2023" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

locals {
  config = templatefile("${path.module}/templates/sekisho-${var.load_balancer}.yaml.tftpl", {
    vpc_cidr    = var.vpc_cidr
    app_servers = var.app_servers
    domains     = var.domains
    acme_email  = var.acme_email
    redis_host  = aws_elasticache_replication_group.redis.primary_endpoint_address
    https_proxy = local.https_proxy
  })
  user_data = templatefile("${path.module}/templates/user-data.sh.tftpl", {
    config          = local.config
    unit            = file("${path.module}/../systemd/sekisho.service")
    sekisho_url     = var.sekisho_url
    sekisho_sha256  = var.sekisho_sha256
    redis_parameter = aws_ssm_parameter.redis_auth.name
    region          = var.region
    quic_target     = local.quic_target_group
  })
}

resource "aws_iam_role" "instance" {
  name = "${var.name}-instance"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "ec2.amazonaws.com" } }]
  })
}

# Session Manager: shell and port forwarding to the admin listener, with no
# inbound port.
resource "aws_iam_role_policy_attachment" "ssm_core" {
  role       = aws_iam_role.instance.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy" "redis_token" {
  name = "read-redis-auth-token"
  role = aws_iam_role.instance.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["ssm:GetParameter"], Resource = aws_ssm_parameter.redis_auth.arn }]
  })
}

# quic_listener: each instance registers itself in the TCP_QUIC target
# group under its server ID, and deregisters when it stops.
resource "aws_iam_role_policy" "quic_target" {
  count = local.quic ? 1 : 0
  name  = "register-in-the-quic-target-group"
  role  = aws_iam_role.instance.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"]
      Resource = aws_lb_target_group.nlb_https[0].arn
    }]
  })
}

resource "aws_iam_instance_profile" "instance" {
  name = "${var.name}-instance"
  role = aws_iam_role.instance.name
}

resource "aws_launch_template" "sekisho" {
  name_prefix            = "${var.name}-"
  image_id               = data.aws_ssm_parameter.al2023.value
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.instances.id]
  user_data              = base64encode(local.user_data)
  iam_instance_profile {
    arn = aws_iam_instance_profile.instance.arn
  }
  metadata_options {
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
  }
  update_default_version = true
  lifecycle {
    precondition {
      condition     = var.load_balancer == "alb" || length(var.domains) > 0
      error_message = "load_balancer = \"nlb\" needs domains: sekisho gets their certificates from ACME."
    }
    precondition {
      condition     = !var.quic_listener || (var.load_balancer == "nlb" && var.http3)
      error_message = "quic_listener needs load_balancer = \"nlb\" and http3 = true."
    }
    precondition {
      condition     = var.load_balancer == "nlb" || var.certificate_arn != ""
      error_message = "load_balancer = \"alb\" needs certificate_arn for its HTTPS listener."
    }
  }
}

resource "aws_autoscaling_group" "sekisho" {
  name                      = var.name
  vpc_zone_identifier       = aws_subnet.private[*].id
  min_size                  = 2
  desired_capacity          = var.replicas
  max_size                  = var.max_replicas
  target_group_arns         = local.target_group_arns
  health_check_type         = "ELB"
  health_check_grace_period = 180
  launch_template {
    id      = aws_launch_template.sekisho.id
    version = aws_launch_template.sekisho.latest_version
  }
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 50
      instance_warmup        = 120
    }
  }
  tag {
    key                 = "Name"
    value               = var.name
    propagate_at_launch = true
  }
}
