variable "name" {
  description = "Prefix of every resource's name."
  type        = string
  default     = "sekisho"
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "load_balancer" {
  description = "nlb: TCP 80/443 with PROXY v2 and UDP 443 (HTTP/3), TLS terminated by sekisho; alb: the ALB terminates TLS and reports the client in X-Forwarded-For."
  type        = string
  default     = "nlb"
  validation {
    condition     = contains(["nlb", "alb"], var.load_balancer)
    error_message = "load_balancer is \"nlb\" or \"alb\"."
  }
}

variable "vpc_cidr" {
  description = "The VPC's CIDR; the replicas trust PROXY headers (nlb) or X-Forwarded-For (alb) from it only."
  type        = string
  default     = "10.0.0.0/16"
}

variable "azs" {
  description = "Two availability zones; empty takes the region's first two."
  type        = list(string)
  default     = []
}

variable "instance_type" {
  type    = string
  default = "c7i.large"
}

variable "replicas" {
  description = "Desired sekisho instances (min is 2: one per AZ)."
  type        = number
  default     = 2
}

variable "max_replicas" {
  type    = number
  default = 6
}

variable "sekisho_url" {
  description = "Where instances download the sekisho binary (linux/amd64, `make build`), e.g. a release asset or an S3 presigned URL. Changing it (with sekisho_sha256) rolls the instances one at a time."
  type        = string
}

variable "sekisho_sha256" {
  description = "SHA-256 of that binary; boot fails on a mismatch."
  type        = string
}

variable "app_servers" {
  description = "The application servers behind sekisho, in both AZs."
  type        = list(object({ name = string, address = string }))
}

variable "domains" {
  description = "nlb: the names sekisho gets ACME certificates for (kept in Redis, shared by the replicas)."
  type        = list(string)
  default     = []
}

variable "acme_email" {
  type    = string
  default = ""
}

variable "certificate_arn" {
  description = "alb: the ACM certificate of the HTTPS listener."
  type        = string
  default     = ""
}

variable "http3" {
  description = "nlb: also forward UDP 443 (HTTP/3) by making the 443 listener TCP_UDP."
  type        = bool
  default     = true
}

variable "quic_listener" {
  description = "nlb with http3: make 443 a TCP_QUIC listener instead of TCP_UDP. The NLB then routes each QUIC packet by the server ID in its connection ID, so an HTTP/3 client whose address changes (NAT rebinding, Wi-Fi to mobile) keeps its connection; TCP_UDP hashes the address and loses it. Each instance registers itself under a server ID derived from its instance ID, which sekisho writes into its connection IDs. AWS allows no security group on an NLB with a QUIC listener, so switching recreates the NLB. Needs the AWS provider 6.28 or later and an AWS CLI from November 2025 or later on the AMI."
  type        = bool
  default     = false
}

variable "client_cidrs" {
  description = "Who may reach the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "redis_node_type" {
  type    = string
  default = "cache.t4g.small"
}
