package certs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/libdns/libdns"
	"github.com/miekg/dns"
)

// Route53Config sets DNS-01 TXT records in AWS Route 53. Credentials come
// from the usual AWS chain: environment, shared files, or the instance's
// or task's role.
type Route53Config struct {
	// HostedZoneID, when set, spares looking the zone up by name.
	HostedZoneID string `yaml:"hosted_zone_id"`
	// Region signs the requests; Route 53 is global (default us-east-1).
	Region string `yaml:"region"`
	// Endpoint overrides the API's URL (a VPC endpoint, or tests).
	Endpoint string `yaml:"endpoint"`
}

// route53Provider is a libdns provider over the Route 53 API.
type route53Provider struct {
	client *route53.Client
	zoneID string     // fixed, or "" to look up by name
	mu     sync.Mutex // a set's values are read, changed and written back
}

func newRoute53(ctx context.Context, c Route53Config) (*route53Provider, error) {
	region := c.Region
	if region == "" {
		region = "us-east-1"
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("acme.dns01.route53: AWS configuration: %w", err)
	}
	client := route53.NewFromConfig(cfg, func(o *route53.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	})
	return &route53Provider{client: client, zoneID: c.HostedZoneID}, nil
}

// AppendRecords implements libdns.RecordAppender: the values join those
// already in the record set (a wildcard and its apex share one name).
func (p *route53Provider) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	return recs, p.change(ctx, zone, recs, false)
}

// DeleteRecords implements libdns.RecordDeleter.
func (p *route53Provider) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	return recs, p.change(ctx, zone, recs, true)
}

func (p *route53Provider) change(ctx context.Context, zone string, recs []libdns.Record, remove bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	zoneID, err := p.zone(ctx, zone)
	if err != nil {
		return err
	}
	for _, r := range recs {
		rr, name, err := challengeTXT(zone, r)
		if err != nil {
			return fmt.Errorf("route53: %w", err)
		}
		values, ttl, err := p.txt(ctx, zoneID, name)
		if err != nil {
			return err
		}
		value := strconv.Quote(rr.Data)
		if remove {
			values = slices.DeleteFunc(values, func(v string) bool { return v == value })
		} else if !slices.Contains(values, value) {
			values = append(values, value)
			ttl = int64(max(rr.TTL/time.Second, 1))
		}
		action := r53types.ChangeActionUpsert
		if len(values) == 0 {
			// Route 53 deletes a set by its exact current content.
			action, values = r53types.ChangeActionDelete, []string{value}
		}
		set := &r53types.ResourceRecordSet{Name: aws.String(name), Type: r53types.RRTypeTxt, TTL: aws.Int64(ttl)}
		for _, v := range values {
			set.ResourceRecords = append(set.ResourceRecords, r53types.ResourceRecord{Value: aws.String(v)})
		}
		out, err := p.client.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
			HostedZoneId: aws.String(zoneID),
			ChangeBatch:  &r53types.ChangeBatch{Changes: []r53types.Change{{Action: action, ResourceRecordSet: set}}},
		})
		if err != nil {
			return fmt.Errorf("route53: %s TXT %s: %w", action, name, err)
		}
		if !remove {
			if err := p.waitInSync(ctx, out.ChangeInfo); err != nil {
				return err
			}
		}
	}
	return nil
}

// txt returns the values (quoted, as Route 53 keeps them) and TTL of the
// TXT set called name.
func (p *route53Provider) txt(ctx context.Context, zoneID, name string) ([]string, int64, error) {
	out, err := p.client.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{
		HostedZoneId: aws.String(zoneID), StartRecordName: aws.String(name), StartRecordType: r53types.RRTypeTxt, MaxItems: aws.Int32(1),
	})
	if err != nil {
		return nil, 0, fmt.Errorf("route53: reading TXT %s: %w", name, err)
	}
	for _, s := range out.ResourceRecordSets {
		if strings.EqualFold(aws.ToString(s.Name), name) && s.Type == r53types.RRTypeTxt {
			var values []string
			for _, r := range s.ResourceRecords {
				values = append(values, aws.ToString(r.Value))
			}
			return values, aws.ToInt64(s.TTL), nil
		}
	}
	return nil, 60, nil
}

// waitInSync waits until Route 53's name servers serve the change.
func (p *route53Provider) waitInSync(ctx context.Context, info *r53types.ChangeInfo) error {
	for info != nil && info.Status != r53types.ChangeStatusInsync {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
		out, err := p.client.GetChange(ctx, &route53.GetChangeInput{Id: info.Id})
		if err != nil {
			return fmt.Errorf("route53: change %s: %w", aws.ToString(info.Id), err)
		}
		info = out.ChangeInfo
	}
	return nil
}

// zone finds the hosted zone's ID by name, unless one was configured.
func (p *route53Provider) zone(ctx context.Context, zone string) (string, error) {
	if p.zoneID != "" {
		return p.zoneID, nil
	}
	name := dns.Fqdn(zone)
	out, err := p.client.ListHostedZonesByName(ctx, &route53.ListHostedZonesByNameInput{DNSName: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("route53: finding the hosted zone %s: %w", name, err)
	}
	for _, z := range out.HostedZones {
		if strings.EqualFold(aws.ToString(z.Name), name) && (z.Config == nil || !z.Config.PrivateZone) {
			return strings.TrimPrefix(aws.ToString(z.Id), "/hostedzone/"), nil
		}
	}
	return "", errors.New("route53: no public hosted zone named " + name)
}
