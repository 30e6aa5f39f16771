//! Record shapes of the types whose generated input is a template: one line (or document) per
//! record with `${...}` placeholders, filled from the benchmark's pseudo-random numbers so that
//! addresses, ports, times and choices vary as in real traffic.
//!
//! Placeholders: `${i}` the record's number, `${ip}` a public address (20,000 of them, as the
//! other generators), `${priv}` a private one, `${port}` a client port, `${n:K}` a number below
//! K, `${hex:N}` N hex digits, `${pick:a|b|c}` one of the choices, `${t:FORMAT}` the record's
//! time (strftime; 50 records per second from 2024-05-01).

use super::{BASE_EPOCH, Lcg};
use chrono::DateTime;
use std::fmt::Write;

/// How one type's object is generated: `head`, then each record expanded from `record`
/// (separated by `separator`), then `tail`.
pub struct Shape {
    pub log_type: &'static str,
    pub key: &'static str,
    pub head: &'static str,
    pub record: &'static str,
    pub separator: &'static str,
    pub tail: &'static str,
    /// The records (JSON lines) are written as a Parquet file (Security Lake).
    pub parquet: bool,
}

impl Shape {
    pub fn generate(&self, rng: &mut Lcg, n: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(self.head.as_bytes());
        let mut record = String::with_capacity(self.record.len() * 2);
        for i in 0..n {
            if i > 0 {
                out.extend_from_slice(self.separator.as_bytes());
            }
            record.clear();
            expand(self.record, rng, i, &mut record);
            out.extend_from_slice(record.as_bytes());
        }
        out.extend_from_slice(self.tail.as_bytes());
    }
}

/// The shape of `log_type`, if it is generated from one.
pub fn shape(log_type: &str) -> Option<&'static Shape> {
    SHAPES.iter().find(|s| s.log_type == log_type)
}

/// Writes `template` with its placeholders filled for record `i`.
fn expand(template: &str, rng: &mut Lcg, i: usize, out: &mut String) {
    let mut rest = template;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let Some(len) = rest[at..].find('}') else {
            out.push_str(&rest[at..]);
            return;
        };
        let token = &rest[at + 2..at + len];
        rest = &rest[at + len + 1..];
        let (name, arg) = token.split_once(':').unwrap_or((token, ""));
        match name {
            "i" => {
                let _ = write!(out, "{i}");
            }
            "ip" => out.push_str(&rng.ip()),
            "priv" => {
                let _ = write!(
                    out,
                    "10.{}.{}.{}",
                    rng.below(4),
                    rng.below(256),
                    rng.below(254) + 1
                );
            }
            "port" => {
                let _ = write!(out, "{}", rng.below(60000) + 1024);
            }
            "n" => {
                let _ = write!(out, "{}", rng.below(arg.parse().unwrap_or(1000).max(1)));
            }
            "hex" => {
                for _ in 0..arg.parse().unwrap_or(8) {
                    let _ = write!(out, "{:x}", rng.below(16));
                }
            }
            "pick" => {
                let choices: Vec<&str> = arg.split('|').collect();
                out.push_str(choices[rng.below(choices.len() as u64) as usize]);
            }
            "t" => {
                let at =
                    DateTime::from_timestamp(BASE_EPOCH + (i / 50) as i64, 0).unwrap_or_default();
                let _ = write!(out, "{}", at.format(arg));
            }
            _ => {
                out.push_str("${");
                out.push_str(token);
                out.push('}');
            }
        }
    }
    out.push_str(rest);
}

/// JSON lines as a Parquet file with gzip pages, as Security Lake writes its objects: the
/// schema is inferred from the rows (structs for objects, lists for arrays).
pub fn parquet_of_json_lines(json_lines: &[u8]) -> Vec<u8> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;
    let Ok((schema, _)) = arrow_json::reader::infer_json_schema(&mut &json_lines[..], Some(1000))
    else {
        return Vec::new();
    };
    let schema = std::sync::Arc::new(schema);
    let Ok(reader) = arrow_json::ReaderBuilder::new(schema.clone()).build(json_lines) else {
        return Vec::new();
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::GZIP(Default::default()))
        .build();
    let mut out = Vec::new();
    let Ok(mut writer) = ArrowWriter::try_new(&mut out, schema, Some(props)) else {
        return Vec::new();
    };
    for batch in reader.flatten() {
        if writer.write(&batch).is_err() {
            return Vec::new();
        }
    }
    if writer.close().is_err() {
        return Vec::new();
    }
    out
}

/// A Windows Security event as XML (Directory Service, FSx for Windows and the CloudWatch agent write the same).
const WINDOWS_SECURITY_EVENT: &str = r#"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Microsoft-Windows-Security-Auditing' Guid='{54849625-5478-4994-a5ba-3e3b0328c30d}'/><EventID>${pick:4624|4625|4634|4672}</EventID><Version>0</Version><Level>0</Level><Task>12544</Task><Opcode>0</Opcode><Keywords>0x8010000000000000</Keywords><TimeCreated SystemTime='${t:%Y-%m-%dT%H:%M:%S}.${n:9999999}Z'/><EventRecordID>${i}</EventRecordID><Correlation/><Execution ProcessID='652' ThreadID='${n:9000}'/><Channel>Security</Channel><Computer>EC2AMAZ-${hex:7}</Computer><Security/></System><EventData><Data Name='SubjectUserSid'>S-1-5-18</Data><Data Name='SubjectUserName'>EC2AMAZ$</Data><Data Name='TargetUserSid'>S-1-5-21-1-2-3-${n:2000}</Data><Data Name='TargetUserName'>${pick:Administrator|jdoe|svc-backup}</Data><Data Name='TargetDomainName'>CORP</Data><Data Name='LogonType'>${pick:3|10}</Data><Data Name='IpAddress'>${ip}</Data><Data Name='IpPort'>${port}</Data></EventData></Event>"#;

/// An OCSF event (Security Lake's rows, written as Parquet, or OCSF JSON).
const OCSF_EVENT: &str = r#"{"activity_id":1,"activity_name":"${pick:Logon|Create|Traffic}","category_uid":3,"class_uid":${pick:3002|6003|4001},"class_name":"Authentication","type_uid":300201,"time":${t:%s}${n:10}${n:10}${n:10},"severity_id":${pick:1|1|3},"severity":"Informational","status":"${pick:Success|Failure}","user":{"name":"user${n:900}@example.com","uid":"u-${hex:12}"},"actor":{"user":{"name":"user${n:900}@example.com","uid":"u-${hex:12}"}},"src_endpoint":{"ip":"${ip}","port":${port}},"dst_endpoint":{"ip":"${priv}","port":443},"http_request":{"user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0"},"metadata":{"uid":"${hex:8}-${hex:4}-${hex:4}-${hex:4}-${hex:12}","version":"1.1.0","product":{"name":"Example IdP","vendor_name":"Example"}},"cloud":{"provider":"AWS","region":"us-east-1","account":{"uid":"111122223333"}}}"#;

pub const SHAPES: &[Shape] = &[
    Shape {
        log_type: "guardduty",
        key: "AWSLogs/111122223333/GuardDuty/us-east-1/2024/05/01/00/bench.json.gz",
        head: "",
        record: r#"{"version":"0","id":"${hex:8}-${hex:4}-${hex:4}-${hex:4}-${hex:12}","detail-type":"GuardDuty Finding","source":"aws.guardduty","account":"111122223333","time":"${t:%Y-%m-%dT%H:%M:%SZ}","region":"us-east-1","resources":[],"detail":{"schemaVersion":"2.0","accountId":"111122223333","region":"us-east-1","partition":"aws","id":"${hex:32}","arn":"arn:aws:guardduty:us-east-1:111122223333:detector/5ac7d1e2f3a4b5c6d7e8f9a0b1c2d3e4/finding/${hex:32}","type":"${pick:UnauthorizedAccess:EC2/SSHBruteForce|Recon:EC2/PortProbeUnprotectedPort|CryptoCurrency:EC2/BitcoinTool.B!DNS}","resource":{"resourceType":"Instance","instanceDetails":{"instanceId":"i-0a1b2c3d${hex:9}","instanceType":"t3.micro","availabilityZone":"us-east-1a","networkInterfaces":[{"networkInterfaceId":"eni-0a1b2c3d4e5f60718","privateIpAddress":"${priv}","publicIp":"${ip}","subnetId":"subnet-0a1b2c3d","vpcId":"vpc-0a1b2c3d"}],"tags":[{"key":"Name","value":"web-${n:40}"}]}},"service":{"serviceName":"guardduty","detectorId":"5ac7d1e2f3a4b5c6d7e8f9a0b1c2d3e4","action":{"actionType":"NETWORK_CONNECTION","networkConnectionAction":{"connectionDirection":"INBOUND","remoteIpDetails":{"ipAddressV4":"${ip}","country":{"countryName":"Example"}},"remotePortDetails":{"port":${port}},"localPortDetails":{"port":22,"portName":"SSH"},"protocol":"TCP","blocked":false}},"resourceRole":"TARGET","eventFirstSeen":"${t:%Y-%m-%dT%H:%M:%S.000Z}","eventLastSeen":"${t:%Y-%m-%dT%H:%M:%S.000Z}","archived":false,"count":${n:50}},"severity":${pick:2|5|8},"createdAt":"${t:%Y-%m-%dT%H:%M:%S.000Z}","updatedAt":"${t:%Y-%m-%dT%H:%M:%S.000Z}","title":"Unusual traffic to instance","description":"A remote host is probing or brute forcing the instance."}}"#,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "linux_secure",
        key: "AWSLogs/111122223333/linux/us-east-1/web-1/secure-20240501",
        head: "",
        record: "${t:%b %e %H:%M:%S} web-${n:9} sshd[${n:30000}]: ${pick:Failed password for invalid user admin|Accepted publickey for ec2-user|Failed password for root} from ${ip} port ${port} ssh2",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "cloudhsm",
        key: "AWSLogs/111122223333/CloudHSM/us-east-1/cluster-5xk2ajgmlqd/hsm-7c3oyxzjqwe/2024/05/01/audit.log",
        head: "",
        record: "Time: ${t:%m/%d/%y %H:%M:%S}.${n:999999}, usecs:1714521600${n:999999}\nSequence No : 0x${hex:3}\nReboot counter : 0x5\nCommand Type(hex) : CN_MGMT_CMD (0x0)\nOpcode : ${pick:CN_LOGIN (0xd)|CN_LOGOUT (0xe)|CN_FIND_OBJECTS_USING_COUNT (0x13)}\nSession Handle : 0x${hex:6}\nResponse : 0:HSM Return: SUCCESS\nLog type : MINIMAL_LOG_ENTRY (0)\nUser Name : crypto_user_${n:5}\nUser Type : CN_CRYPTO_USER (1)",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "nlb",
        key: "AWSLogs/111122223333/elasticloadbalancing/us-east-1/2024/05/01/111122223333_elasticloadbalancing_us-east-1_net.api-nlb.0fedcba987654321_20240501T0000Z_bench.log.gz",
        head: "",
        record: "tls 2.0 ${t:%Y-%m-%dT%H:%M:%S} net/api-nlb/0fedcba987654321 b4f2c3d1a0e98765 ${ip}:${port} ${priv}:8443 ${n:30000} ${n:90} ${n:9000} ${n:90000} - arn:aws:acm:us-east-1:111122223333:certificate/4f2b1c3d-5e6a-4b7c-8d9e-0f1a2b3c4d5e - ${pick:ECDHE-RSA-AES128-GCM-SHA256 tlsv12 -|TLS_AES_128_GCM_SHA256 tlsv13 x25519} api.example.com ${pick:h2 h2 \"h2\",\"http/1.1\"|- - -} ${t:%Y-%m-%dT%H:%M:%S}",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "clb",
        key: "AWSLogs/111122223333/elasticloadbalancing/us-east-1/2024/05/01/111122223333_elasticloadbalancing_us-east-1_web-clb_20240501T0000Z_198.51.100.10_bench.log",
        head: "",
        record: "${t:%Y-%m-%dT%H:%M:%S}.${n:999999}Z web-clb ${ip}:${port} ${priv}:80 0.000043 0.0${n:99999} 0.000021 ${pick:200 200|200 200|404 404|302 302} ${n:900} ${n:90000} \"${pick:GET|POST} https://www.example.com:443/items/${n:5000}?page=${n:9} HTTP/1.1\" \"${pick:Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0|curl/8.5.0}\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "s3accesslog",
        key: "s3-access/app-assets/2024-05-01-00-00-00-1A2B3C4D5E6F7A8B",
        head: "",
        record: "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be app-assets [${t:%d/%b/%Y:%H:%M:%S +0000}] ${ip} ${pick:-|arn:aws:iam::111122223333:user/deploy-bot|arn:aws:sts::111122223333:assumed-role/app/i-0abc} ${hex:16} ${pick:REST.GET.OBJECT|REST.PUT.OBJECT|REST.HEAD.OBJECT} images/${n:9000}.png \"GET /images/${n:9000}.png HTTP/1.1\" ${pick:200 -|200 -|403 AccessDenied|404 NoSuchKey} ${n:90000} 48213 ${n:90} ${n:40} \"-\" \"aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64\" - ${hex:40}= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader app-assets.s3.us-east-1.amazonaws.com TLSv1.2 - -",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "cloudfront-standard",
        key: "cloudfront/www/E2QWRUHAPOMQZL.2024-05-01-00.a1b2c3d4.gz",
        head: "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n",
        record: "${t:%Y-%m-%d\t%H:%M:%S}\t${pick:NRT57-P3|IAD89-C1|FRA56-P8}\t${n:90000}\t${ip}\t${pick:GET|GET|POST}\td111111abcdef8.cloudfront.net\t/items/${n:5000}\t${pick:200|200|304|404}\t-\t${pick:Mozilla/5.0%20(Macintosh;%20Intel%20Mac%20OS%20X%2014_4)%20AppleWebKit/605.1.15%20(KHTML,%20like%20Gecko)%20Version/17.4%20Safari/605.1.15|curl/8.5.0}\tpage=${n:9}\t-\t${pick:Hit|Miss|Error}\t${hex:40}==\twww.example.com\thttps\t${n:900}\t0.00${n:9}\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tHit\tHTTP/2.0\t-\t-\t${port}\t0.002\tHit\ttext/html\t${n:90000}\t-\t-",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "cloudfront-realtime",
        key: "AWSLogs/111122223333/CloudFront/global/E2QWRUHAPOMQZL/realtime/2024/05/01/00/cf-rt-1-2024-05-01-00-00-00-bench",
        head: "",
        record: "${t:%s}.${n:999}\t${ip}\t0.002\t${pick:200|200|304|404}\t${n:90000}\t${pick:GET|GET|POST}\thttps\td111111abcdef8.cloudfront.net\t/items/${n:5000}\t${n:900}\t${pick:NRT57-P3|IAD89-C1}\t${hex:40}==\twww.example.com\t0.00${n:9}\tHTTP/2.0\tIPv4\t${pick:Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)|python-requests/2.31.0}\t-\t-\tpage=${n:9}\tHit\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tHit\t-\t-\ttext/html\t${n:90000}\t-\t-\t${port}\tHit\t${pick:JP|US|DE}\tgzip,br\ttext/html\t*\thost:www.example.com%0A\thost%0A\t1",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "route53resolver",
        key: "AWSLogs/111122223333/vpcdnsquerylogs/vpc-0a1b2c3d4e5f67890/2024/05/01/vpc-0a1b2c3d4e5f67890_vpcdnsquerylogs_111122223333_20240501T0000Z_bench.log.gz",
        head: "",
        record: r#"{"version":"1.100000","account_id":"111122223333","region":"us-east-1","vpc_id":"vpc-0a1b2c3d4e5f67890","query_timestamp":"${t:%Y-%m-%dT%H:%M:%SZ}","query_name":"${pick:api|www|cdn|telemetry}${n:500}.example.com.","query_type":"${pick:A|AAAA|CNAME}","query_class":"IN","rcode":"${pick:NOERROR|NOERROR|NXDOMAIN}","answers":[{"Rdata":"${ip}","Type":"A","Class":"IN"}],"srcaddr":"${priv}","srcport":"${port}","transport":"UDP","srcids":{"instance":"i-0a1b2c3d${hex:9}"}}"#,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "config-history",
        key: "AWSLogs/111122223333/Config/us-east-1/2024/5/1/ConfigHistory/111122223333_Config_us-east-1_ConfigHistory_AWS::EC2::SecurityGroup_20240501T0000Z_20240501T0100Z_1.json.gz",
        head: r#"{"fileVersion":"1.0","configurationItems":["#,
        record: r#"{"configurationItemVersion":"1.3","configurationItemCaptureTime":"${t:%Y-%m-%dT%H:%M:%S.000Z}","configurationStateId":17145${n:99999999},"awsAccountId":"111122223333","configurationItemStatus":"${pick:OK|ResourceDiscovered|ResourceDeleted}","resourceType":"AWS::EC2::SecurityGroup","resourceId":"sg-${hex:17}","resourceName":"sg-${n:900}","ARN":"arn:aws:ec2:us-east-1:111122223333:security-group/sg-${hex:17}","awsRegion":"us-east-1","availabilityZone":"Not Applicable","configurationStateMd5Hash":"","configuration":{"groupName":"sg-${n:900}","ipPermissions":[{"ipProtocol":"tcp","fromPort":${port},"toPort":${port},"ipRanges":["${ip}/32"]}]},"supplementaryConfiguration":{},"tags":{"team":"${pick:web|data|ops}"},"relationships":[{"resourceType":"AWS::EC2::VPC","resourceId":"vpc-0a1b2c3d4e5f67890","relationshipName":"Is contained in Vpc"}],"relatedEvents":[]}"#,
        separator: ",",
        tail: "]}",
        parquet: false,
    },
    Shape {
        log_type: "config-snapshot",
        key: "AWSLogs/111122223333/Config/us-east-1/2024/5/1/ConfigSnapshot/111122223333_Config_us-east-1_ConfigSnapshot_20240501T000000Z_bench.json.gz",
        head: r#"{"fileVersion":"1.0","configSnapshotId":"a58c9be2-0fa9-46b7-8be9-d6b24c261604","configurationItems":["#,
        record: r#"{"configurationItemVersion":"1.3","configurationItemCaptureTime":"${t:%Y-%m-%dT%H:%M:%S.000Z}","configurationStateId":17145${n:99999999},"awsAccountId":"111122223333","configurationItemStatus":"OK","resourceType":"AWS::EC2::Instance","resourceId":"i-0a1b2c3d${hex:9}","resourceName":"web-${n:900}","ARN":"arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d${hex:9}","awsRegion":"us-east-1","availabilityZone":"us-east-1a","configuration":{"instanceType":"${pick:t3.micro|m5.large}","privateIpAddress":"${priv}","publicIpAddress":"${ip}","state":{"code":16,"name":"running"}},"supplementaryConfiguration":{},"tags":{"Name":"web-${n:900}"},"relationships":[]}"#,
        separator: ",",
        tail: "]}",
        parquet: false,
    },
    Shape {
        log_type: "config-rules",
        key: "AWSLogs/111122223333/aws.config/Config_Rules_Compliance_Change/us-east-1/2024/05/01/config-rules-bench.gz",
        head: "",
        record: r#"{"version":"0","id":"${hex:8}-${hex:4}-${hex:4}-${hex:4}-${hex:12}","detail-type":"Config Rules Compliance Change","source":"aws.config","account":"111122223333","time":"${t:%Y-%m-%dT%H:%M:%SZ}","region":"us-east-1","resources":[],"detail":{"resourceId":"sg-${hex:17}","awsRegion":"us-east-1","awsAccountId":"111122223333","configRuleName":"${pick:restricted-ssh|s3-bucket-public-read-prohibited|ec2-imdsv2-check}","recordVersion":"1.0","configRuleARN":"arn:aws:config:us-east-1:111122223333:config-rule/config-rule-${hex:6}","messageType":"ComplianceChangeNotification","newEvaluationResult":{"evaluationResultIdentifier":{"evaluationResultQualifier":{"configRuleName":"restricted-ssh","resourceType":"AWS::EC2::SecurityGroup","resourceId":"sg-${hex:17}","evaluationMode":"DETECTIVE"},"orderingTimestamp":"${t:%Y-%m-%dT%H:%M:%S.000Z}"},"complianceType":"${pick:COMPLIANT|NON_COMPLIANT}","resultRecordedTime":"${t:%Y-%m-%dT%H:%M:%S.000Z}","configRuleInvokedTime":"${t:%Y-%m-%dT%H:%M:%S.000Z}"},"notificationCreationTime":"${t:%Y-%m-%dT%H:%M:%S.000Z}","resourceType":"AWS::EC2::SecurityGroup"}}"#,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "clientvpn",
        key: "AWSLogs/111122223333/ClientVPN/us-east-1/2024/05/01/00/clientvpn-to-s3-1-2024-05-01-00-00-00-bench",
        head: "",
        record: r#"{"connection-log-type":"connection-attempt","connection-attempt-status":"${pick:successful|successful|failed}","connection-reset-status":"NA","connection-attempt-failure-reason":"NA","connection-id":"cvpn-connection-${hex:17}","client-vpn-endpoint-id":"cvpn-endpoint-0123456789abcdef0","transport-protocol":"udp","connection-start-time":"${t:%Y-%m-%d %H:%M:%S}","connection-last-update-time":"${t:%Y-%m-%d %H:%M:%S}","client-ip":"172.16.${n:250}.${n:250}","common-name":"client${n:300}.vpn.example.com","device-type":"${pick:mac|windows|linux}","device-ip":"${ip}","port":"${port}","ingress-bytes":"${n:900000}","egress-bytes":"${n:9000000}","ingress-packets":"${n:9000}","egress-packets":"${n:90000}","connection-end-time":"NA","connection-duration-seconds":"${n:9000}","username":"user${n:300}","client-openvpn-version":"OpenVPN 2.6.8","posture-compliance-statuses":[]}"#,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "networkfirewall",
        key: "AWSLogs/111122223333/network-firewall/alert/us-east-1/fw-prod/2024/05/01/00/111122223333_network-firewall_alert_us-east-1_fw-prod_20240501T0000Z_bench.log.gz",
        head: "",
        record: r#"{"firewall_name":"fw-prod","availability_zone":"us-east-1a","event_timestamp":"${t:%s}","event":{"timestamp":"${t:%Y-%m-%dT%H:%M:%S}.${n:999999}+0000","flow_id":${n:999999999},"event_type":"${pick:alert|netflow|netflow}","src_ip":"${priv}","src_port":${port},"dest_ip":"${ip}","dest_port":${pick:443|80|53},"proto":"${pick:TCP|UDP}","app_proto":"${pick:tls|http|dns}","alert":{"action":"${pick:blocked|allowed}","signature_id":${n:3000000},"rev":${n:9},"signature":"ET POLICY outbound rule ${n:500}","category":"Potentially Bad Traffic","severity":${pick:1|2|3}},"netflow":{"pkts":${n:900},"bytes":${n:900000},"start":"${t:%Y-%m-%dT%H:%M:%S}.000000+0000","end":"${t:%Y-%m-%dT%H:%M:%S}.500000+0000","age":${n:60},"min_ttl":63,"max_ttl":63},"tls":{"sni":"host${n:900}.example.net","version":"TLS 1.3"}}}"#,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "linux-os-syslog",
        key: "logs/linux/ip-10-0-1-23/messages",
        head: "",
        record: "${t:%b %e %H:%M:%S} ip-10-0-${n:4}-${n:250} ${pick:systemd[1]: Started Session ${n:900} of user ec2-user.|kernel: [${n:99999}.${n:999999}] eth0: link up|CROND[${n:30000}]: (root) CMD (run-parts /etc/cron.hourly)|dhclient[${n:3000}]: bound to ${priv} -- renewal in ${n:3600} seconds.}",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "apache-access",
        key: "weblogs/apache/access/web-1/access_log",
        head: "",
        record: "${ip} - ${pick:-|-|alice} [${t:%d/%b/%Y:%H:%M:%S +0000}] \"${pick:GET|GET|POST} /items/${n:5000}?page=${n:9} HTTP/1.1\" ${pick:200|200|304|404} ${n:90000} \"${pick:-|https://shop.example.com/}\" \"${pick:Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36|curl/8.5.0}\"",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "apache-error",
        key: "weblogs/apache/error/web-1/error_log",
        head: "",
        record: "[${t:%a %b %d %H:%M:%S}.${n:999999} 2024] [${pick:core:error|authz_core:error|ssl:warn}] [pid ${n:30000}:tid ${n:999999}] [client ${ip}:${port}] AH0${n:9999}: ${pick:client denied by server configuration: /var/www/private|File does not exist: /var/www/html/x${n:900}.php}",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "nginx-access",
        key: "weblogs/nginx/access/lb-1/access.log",
        head: "",
        record: "${ip} - - [${t:%d/%b/%Y:%H:%M:%S +0000}] \"${pick:GET|GET|POST} /v1/items/${n:5000}?page=${n:9} HTTP/1.1\" ${pick:200|200|304|404} ${n:90000} \"-\" \"${pick:python-requests/2.31.0|Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0}\" \"-\"",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "nginx-error",
        key: "weblogs/nginx/error/lb-1/error.log",
        head: "",
        record: "${t:%Y/%m/%d %H:%M:%S} [${pick:error|warn|crit}] ${n:30000}#${n:30000}: *${n:999999} ${pick:open() \"/usr/share/nginx/html/x.php\" failed (2: No such file or directory)|upstream timed out (110: Connection timed out) while reading response header from upstream}, client: ${ip}, server: api.example.com, request: \"GET /v1/items/${n:5000} HTTP/1.1\", host: \"api.example.com\"",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "rds-postgresql",
        key: "rds-logs/postgresql/orders-db/postgresql.log.2024-05-01-00",
        head: "",
        record: "${t:%Y-%m-%d %H:%M:%S} UTC:${priv}(${port}):${pick:app|report|admin}@orders:[${n:30000}]:${pick:LOG|LOG|ERROR|FATAL}:  ${pick:statement: SELECT id, total\n\tFROM orders\n\tWHERE id = 42;|connection authorized: user=app database=orders|password authentication failed for user \"report\"|duration: ${n:900}.${n:999} ms}",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "rds-mysql-audit",
        key: "rds-logs/mysql/shop-db/audit/server_audit.log",
        head: "",
        record: "${t:%Y%m%d %H:%M:%S},ip-172-31-5-10,${pick:app_user|admin|report},${priv},${n:900},${n:999999},${pick:QUERY|QUERY|CONNECT|DISCONNECT|FAILED_CONNECT},shop,'SELECT id, name FROM customers WHERE id = ${n:99999}',${pick:0|0|0|1045}",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "rds-mysql-general",
        key: "rds-logs/mysql/shop-db/general/mysql-general.log",
        head: "",
        record: "${t:%Y-%m-%dT%H:%M:%S}.${n:999999}Z\t   ${n:900} ${pick:Query|Query|Connect|Quit}\t${pick:SELECT c.id, c.name\nFROM customers c\nWHERE c.id = 42|app@10.0.1.44 on shop using TCP/IP|}",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "rds-mysql-error",
        key: "rds-logs/mysql/shop-db/error/mysql-error-running.log",
        head: "",
        record: "${t:%Y-%m-%dT%H:%M:%S}.${n:999999}Z ${n:900} [${pick:Note|Warning|ERROR}] [MY-0${n:99999}] [Server] ${pick:Aborted connection ${n:900} to db: 'shop' user: 'app' host: '${priv}' (Got an error reading communication packets).|Access denied for user 'root'@'${ip}' (using password: YES)}",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "rds-mysql-slowquery",
        key: "rds-logs/mysql/shop-db/slowquery/mysql-slowquery.log",
        head: "",
        record: "# Time: ${t:%Y-%m-%dT%H:%M:%S}.${n:999999}Z\n# User@Host: ${pick:app|report}[app] @  [${priv}]  Id:    ${n:900}\n# Query_time: ${n:30}.${n:999999}  Lock_time: 0.000${n:999} Rows_sent: ${n:500}  Rows_examined: ${n:9000000}\nuse shop;\nSET timestamp=1714521600;\nSELECT customer_id, SUM(total) FROM orders WHERE status = 'PENDING' GROUP BY customer_id;",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "elasticache-redis-slowlog",
        key: "AWSLogs/111122223333/ElastiCache/redis-slowlog/us-east-1/2024/05/01/00/redis-slowlog-bench.gz",
        head: "",
        record: r#"{"CacheClusterId":"sessions-redis-0001-00${n:3}","CacheNodeId":"000${n:3}","Id":${n:9999999},"Timestamp":${t:%s},"Duration (us)":${n:900000},"Command":"${pick:KEYS session:*|HGETALL cart:42|EVAL (5 more arguments)}","ClientAddress":"${priv}:${port}","ClientName":"web-${n:9}"}"#,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "msk",
        key: "AWSLogs/111122223333/KafkaBrokerLogs/us-east-1/orders-msk-0a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d-2/2024-05-01-00/Broker-1_000000_bench.log.gz",
        head: "",
        record: "[${t:%Y-%m-%d %H:%M:%S},${n:10}${n:10}${n:10}] ${pick:INFO|INFO|WARN|ERROR} ${pick:[GroupCoordinator 1]: Preparing to rebalance group orders-consumer in state PreparingRebalance (kafka.coordinator.group.GroupCoordinator)|[SocketServer listenerType=ZK_BROKER, nodeId=1] Failed authentication with /${ip} (org.apache.kafka.common.network.Selector)|[Log partition=orders-${n:12}, dir=/kafka/datalogs] Deleting segment ${n:99999} (kafka.log.LocalLog)}",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "opensearch-audit",
        key: "exports/opensearch/audit/siem-domain/bench.json",
        head: "",
        record: r#"{"audit_cluster_name":"111122223333:siem-domain","audit_node_name":"8c297976e896a24f41c1a982a2a4ae0c","audit_category":"${pick:AUTHENTICATED|AUTHENTICATED|FAILED_LOGIN|MISSING_PRIVILEGES|GRANTED_PRIVILEGES}","audit_request_origin":"REST","audit_node_id":"dbabc665b2487db491ac76","audit_request_layer":"REST","audit_rest_request_path":"/log-aws-cloudtrail-*/_search","@timestamp":"${t:%Y-%m-%dT%H:%M:%S}.${n:999}+00:00","audit_request_effective_user_is_admin":false,"audit_format_version":4,"audit_request_remote_address":"${ip}","audit_node_host_address":"10.0.0.10","audit_rest_request_headers":{"Host":["search-siem.example.com"],"User-Agent":["curl/8.5.0"]},"audit_request_effective_user":"${pick:analyst|admin|loader-role}","audit_rest_request_method":"${pick:GET|POST}","audit_request_id":"${hex:16}"}"#,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "eks-audit",
        key: "firehose/eks-audit/prod/2024/05/01/00/eks-audit-bench",
        head: "",
        record: r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"${hex:8}-${hex:4}-${hex:4}-${hex:4}-${hex:12}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/${pick:default|prod|kube-system}/${pick:pods|secrets|configmaps}/x-${n:900}","verb":"${pick:get|list|create|delete|patch}","user":{"username":"${pick:arn:aws:iam::111122223333:role/dev|system:node:ip-10-0-1-5|system:serviceaccount:ci:deployer}","uid":"aws-iam-authenticator:111122223333:AROAEXAMPLE","groups":["system:authenticated"]},"sourceIPs":["${priv}"],"userAgent":"kubectl/v1.30.1 (linux/amd64) kubernetes/abc","objectRef":{"resource":"pods","namespace":"prod","name":"x-${n:900}","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":${pick:200|200|201|403|404}},"requestReceivedTimestamp":"${t:%Y-%m-%dT%H:%M:%S}.${n:999999}Z","stageTimestamp":"${t:%Y-%m-%dT%H:%M:%S}.${n:999999}Z","annotations":{"authorization.k8s.io/decision":"allow"}}"#,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "lambda",
        key: "exports/aws/lambda/orders-handler/bench",
        head: "",
        record: "${pick:START RequestId: 6f1e2d3c-0000-4000-8000-000000000001 Version: 1|${t:%Y-%m-%dT%H:%M:%S}.${n:999}Z\t6f1e2d3c-0000-4000-8000-${hex:12}\tINFO\torder ${n:99999} accepted|REPORT RequestId: 6f1e2d3c-0000-4000-8000-000000000001\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 71 MB|connecting to db.internal.example:5432}",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "apigateway-access",
        key: "firehose/api-gateway-access/orders-api/bench",
        head: "",
        record: r#"{"requestId":"${hex:8}-${hex:4}-${hex:4}-${hex:4}-${hex:12}","ip":"${ip}","caller":"-","user":"-","requestTime":"${t:%d/%b/%Y:%H:%M:%S +0000}","httpMethod":"${pick:GET|GET|POST|DELETE}","resourcePath":"/orders/{id}","status":"${pick:200|200|403|404|500}","protocol":"HTTP/1.1","responseLength":"${n:9000}"}"#,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "route53-public-dns",
        key: "firehose/route53-public/example.com/bench",
        head: "",
        record: "1.0 ${t:%Y-%m-%dT%H:%M:%S}.${n:999}Z Z0123456789ABCDEFGHIJ ${pick:www|api|mail|cdn}${n:90}.example.com ${pick:A|AAAA|MX|TXT} ${pick:NOERROR|NOERROR|NXDOMAIN} ${pick:UDP|UDP|TCP} ${pick:NRT57-P3|IAD89-C1|FRA56-P8} ${ip} -",
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "inspector",
        key: "AWSLogs/111122223333/aws.inspector2/Inspector2_Finding/us-east-1/2024/05/01/inspector-bench.gz",
        head: "",
        record: r#"{"version":"0","id":"${hex:8}-${hex:4}-${hex:4}-${hex:4}-${hex:12}","detail-type":"Inspector2 Finding","source":"aws.inspector2","account":"111122223333","time":"${t:%Y-%m-%dT%H:%M:%SZ}","region":"us-east-1","resources":[],"detail":{"awsAccountId":"111122223333","description":"A vulnerability in a package of the instance.","findingArn":"arn:aws:inspector2:us-east-1:111122223333:finding/${hex:32}","firstObservedAt":"May 1, 2024, 12:00:00 AM","inspectorScore":${n:10}.${n:10},"packageVulnerabilityDetails":{"source":"NVD","sourceUrl":"https://nvd.nist.gov/vuln/detail/CVE-2024-${n:9999}","vendorSeverity":"HIGH","vulnerabilityId":"CVE-2024-${n:9999}","vulnerablePackages":[{"name":"openssl","version":"3.0.${n:9}"}]},"resources":[{"id":"i-0a1b2c3d${hex:9}","type":"AWS_EC2_INSTANCE","region":"us-east-1","partition":"aws"}],"severity":"${pick:LOW|MEDIUM|HIGH|CRITICAL}","status":"${pick:ACTIVE|ACTIVE|CLOSED}","title":"CVE-2024-${n:9999} - openssl","type":"PACKAGE_VULNERABILITY","updatedAt":"${t:%b %-d, %Y, %-I:%M:%S %p}"}}"#,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "workspaces-event",
        key: "AWSLogs/111122223333/WorkSpaces/Event/2024/05/01/00/workspaces-event-bench.gz",
        head: "",
        record: r#"{"version":"0","id":"${hex:8}-${hex:4}-${hex:4}-${hex:4}-${hex:12}","detail-type":"WorkSpaces Access","source":"aws.workspaces","account":"111122223333","time":"${t:%Y-%m-%dT%H:%M:%SZ}","region":"us-east-1","resources":[],"detail":{"actionType":"${pick:successfulLogin|successfulLogin|failedLogin}","clientIpAddress":"${ip}","clientPlatform":"${pick:Windows|MacOS|Web}","clientVersion":"5.18.0.4651","loginTime":"${t:%Y-%m-%dT%H:%M:%S}.${n:10}${n:10}${n:10}Z","workspaceId":"ws-${hex:9}","directoryId":"d-9067a1b2c3"}}"#,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "workspaces-inventory",
        key: "AWSLogs/111122223333/WorkSpaces/Inventory/us-east-1/2024/05/01/workspaces-inventory-bench.json.gz",
        head: r#"{"id":"d9ac7937-af95-40d1-a8fe-6c03aa40a684","time":"2024-05-01T00:00:00Z","detail-type":"WorkSpaces Inventory","source":"inventory.workspaces","account":"111122223333","region":"us-east-1","resources":[],"detail":{"Workspaces":["#,
        record: r#"{"WorkspaceId":"ws-${hex:9}","DirectoryId":"d-9067a1b2c3","UserName":"user${n:900}","IpAddress":"${priv}","State":"${pick:AVAILABLE|STOPPED}","BundleId":"wsb-bh8rsxt14","SubnetId":"subnet-0a9b8c7d6e5f43210","ComputerName":"WSAMZN-${hex:7}","WorkspaceProperties":{"RunningMode":"AUTO_STOP","RootVolumeSizeGib":80,"UserVolumeSizeGib":50,"ComputeTypeName":"STANDARD"},"ModificationStates":[]}"#,
        separator: ",",
        tail: "]}}",
        parquet: false,
    },
    Shape {
        log_type: "trustedadvisor",
        key: "AWSLogs/111122223333/TrustedAdvisor/us-east-1/2024/05/01/trustedadvisor-check-results-bench.json.gz",
        head: "",
        record: r#"{"requestid":"${hex:8}-${hex:4}-${hex:4}-${hex:4}-${hex:12}","creation_date":"${t:%Y-%m-%dT%H:%M:%S}.${n:999999}","account":"111122223333","check":{"id":"HCP4007jGY","name":"Security Groups - Specific Ports Unrestricted","description":"Checks security groups for rules that allow unrestricted access.","category":"security","metadata":["Region","Security Group Name","Security Group ID","Protocol","Status","Ports"]},"result":{"checkId":"HCP4007jGY","timestamp":"${t:%Y-%m-%dT%H:%M:%SZ}","status":"${pick:ok|warning|error}","resourcesSummary":{"resourcesProcessed":${n:90},"resourcesFlagged":1,"resourcesIgnored":0,"resourcesSuppressed":0},"categorySpecificSummary":{"costOptimizing":{"estimatedMonthlySavings":0.0}},"flaggedResources":[{"status":"warning","region":"us-east-1","resourceId":"sg-${hex:17}","isSuppressed":false,"metadata":["us-east-1","web","sg-${hex:17}","tcp","Yellow","22"]}]}}"#,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "directory-service",
        key: "AWSLogs/111122223333/DirectoryService/MicrosoftAD/2024/05/01/00/ad-event-bench",
        head: "",
        record: WINDOWS_SECURITY_EVENT,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "fsx-win",
        key: "AWSLogs/111122223333/FSx/us-east-1/2024/05/01/00/aws-fsx-audit-bench.gz",
        head: "",
        record: WINDOWS_SECURITY_EVENT,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "windows-event",
        key: "logs/windows/events/bench.xml",
        head: "",
        record: WINDOWS_SECURITY_EVENT,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
    Shape {
        log_type: "securitylake",
        key: "aws/CLOUD_TRAIL_MGMT/2.0/region=us-east-1/accountId=111122223333/eventDay=20240501/bench.gz.parquet",
        head: "",
        record: OCSF_EVENT,
        separator: "\n",
        tail: "\n",
        parquet: true,
    },
    Shape {
        log_type: "ocsf-json",
        key: "AWSLogs/111122223333/ocsf-json/us-east-1/2024/05/01/00/ocsf-bench.gz",
        head: "",
        record: OCSF_EVENT,
        separator: "\n",
        tail: "\n",
        parquet: false,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_unknown_ones_kept() {
        let mut rng = Lcg(7);
        let mut out = String::new();
        expand(
            "${i} ${t:%Y-%m-%dT%H:%M:%SZ} ${n:1} ${pick:a} ${hex:4} ${what} ${ip}",
            &mut rng,
            120,
            &mut out,
        );
        let parts: Vec<&str> = out.split(' ').collect();
        assert_eq!(parts[..4], ["120", "2024-05-01T00:00:02Z", "0", "a"]);
        assert_eq!(parts[4].len(), 4);
        assert_eq!(parts[5], "${what}");
        assert!(parts[6].parse::<std::net::Ipv4Addr>().is_ok(), "{out}");
    }
}
