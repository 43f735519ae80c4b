import Foundation
import ObjectStorage
import Testing

@Suite("S3 location, keys and credentials")
struct LocationTests {
    static let hash = String(repeating: "ab", count: 16) + String(repeating: "cd", count: 16)

    @Test("a self-hosted location: bucket, prefix, endpoint with port, region")
    func selfHosted() throws {
        let location = try S3Location(parsing: "s3://media-bucket/chat/prod/?endpoint=http://127.0.0.1:9000&region=eu-west-1")
        #expect(location.bucket == "media-bucket")
        #expect(location.prefix == "chat/prod")
        #expect(location.region == "eu-west-1")
        #expect(location.endpoint == S3Location.Endpoint(secure: false, host: "127.0.0.1", port: 9000))
        #expect("\(location.endpoint)" == "http://127.0.0.1:9000")
        #expect(location.endpoint.hostHeader == "127.0.0.1:9000")
    }

    @Test("without an endpoint: AWS in the region; without a region: us-east-1; no prefix")
    func awsDefaults() throws {
        let location = try S3Location(parsing: "s3://media-bucket?region=eu-central-1")
        #expect("\(location.endpoint)" == "https://s3.eu-central-1.amazonaws.com")
        #expect(location.endpoint.hostHeader == "s3.eu-central-1.amazonaws.com")
        #expect(location.prefix.isEmpty)
        let plain = try S3Location(parsing: "s3://media-bucket/p")
        #expect(plain.region == "us-east-1" && "\(plain.endpoint)" == "https://s3.us-east-1.amazonaws.com")
    }

    @Test("blob and thumbnail keys under the prefix")
    func keys() throws {
        let location = S3Location(bucket: "b-1", prefix: "/chat/")
        let hash = Self.hash
        #expect(try location.blobKey(sha256: hash) == "chat/blobs/sha256/ab/ab/\(hash)")
        #expect(try location.thumbnailKey(sha256: hash, size: "fit320", fileExtension: "jpg") == "chat/thumbs/ab/ab/\(hash)/fit320.jpg")
        #expect(try location.thumbnailsPrefix(sha256: hash) == "chat/thumbs/ab/ab/\(hash)/")
        #expect(location.blobsPrefix == "chat/blobs/sha256/")
        #expect(try S3Location(bucket: "b-1").blobKey(sha256: hash) == "blobs/sha256/ab/ab/\(hash)")
        #expect(throws: ObjectStorageError.self) { try location.blobKey(sha256: "ABC") }
        #expect(throws: ObjectStorageError.self) { try location.blobKey(sha256: hash.uppercased()) }
        #expect(throws: ObjectStorageError.self) { try location.thumbnailKey(sha256: hash, size: "../x", fileExtension: "jpg") }
    }

    @Test("refused: credentials in the URL (without repeating them), no bucket, bad endpoints, unknown parameters",
          arguments: [
              ("s3://AKIAXXXX:TOPSECRET@bucket/p", "AWS_ACCESS_KEY_ID"),
              ("s3://bucket/p?endpoint=http://AKIAXXXX:TOPSECRET@127.0.0.1:9000", "AWS_SECRET_ACCESS_KEY"),
              ("s3:///prefix", "no bucket"),
              ("s3://?endpoint=http://127.0.0.1:9000", "no bucket"),
              ("s3://Bad_Bucket/p", "not a valid S3 bucket name"),
              ("http://bucket/p", "scheme"),
              ("s3://bucket/p?endpoint=ftp://127.0.0.1", "http:// or https://"),
              ("s3://bucket/p?endpoint=127.0.0.1:9000", "http:// or https://"),
              ("s3://bucket/p?endpoint=http://127.0.0.1:9000/base", "only scheme, host and port"),
              ("s3://bucket/p?endpoint=http://127.0.0.1:99999", "port"),
              ("s3://bucket/p?endpont=http://127.0.0.1:9000", "unknown parameter"),
              ("s3://bucket:9000/p", "endpoint parameter"),
          ])
    func refused(_ text: String, _ expected: String) {
        do throws(ObjectStorageError) {
            let location = try S3Location(parsing: text)
            Issue.record("accepted: \(location)")
        } catch {
            #expect(error.description.contains(expected), "\(error)")
            #expect(!error.description.contains("TOPSECRET"), "\(error)")
        }
    }

    @Test("credentials from the environment, a session token too; never shown")
    func environmentCredentials() throws {
        let credentials = try Credentials.load(environment: [
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "TOPSECRET", "AWS_SESSION_TOKEN": "TOKEN",
        ])
        #expect(credentials == Credentials(accessKeyID: "AKIAEXAMPLE", secretAccessKey: "TOPSECRET", sessionToken: "TOKEN"))
        for text in ["\(credentials)", String(reflecting: credentials)] {
            #expect(!text.contains("TOPSECRET") && !text.contains("TOKEN") && !text.contains("AKIAEXAMPLE"), "\(text)")
        }
        var dumped = ""
        dump(credentials, to: &dumped)
        #expect(!dumped.contains("TOPSECRET"), "\(dumped)")
        #expect(throws: ObjectStorageError.self) { try Credentials.load(environment: ["AWS_ACCESS_KEY_ID": "A", "HOME": "/nonexistent"]) }
    }

    @Test("credentials file: profiles, AWS_PROFILE, comments, the config file's [profile name] spelling")
    func credentialsFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("s3-credentials-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("credentials")
        try """
        # shared credentials
        [default]
        aws_access_key_id = AKIADEFAULT
        aws_secret_access_key = defaultsecret

        [profile work]
        ; temporary ones
        AWS_ACCESS_KEY_ID=AKIAWORK
        aws_secret_access_key= work/secret+key=
        aws_session_token = worktoken
        [broken]
        aws_access_key_id = AKIABROKEN
        """.write(to: file, atomically: true, encoding: .utf8)

        let environment = ["AWS_SHARED_CREDENTIALS_FILE": file.path]
        #expect(try Credentials.load(environment: environment)
            == Credentials(accessKeyID: "AKIADEFAULT", secretAccessKey: "defaultsecret"))
        #expect(try Credentials.load(environment: environment.merging(["AWS_PROFILE": "work"]) { $1 })
            == Credentials(accessKeyID: "AKIAWORK", secretAccessKey: "work/secret+key=", sessionToken: "worktoken"))
        // The environment's keys win over the file.
        #expect(try Credentials.load(environment: environment.merging(["AWS_ACCESS_KEY_ID": "E", "AWS_SECRET_ACCESS_KEY": "S"]) { $1 })
            == Credentials(accessKeyID: "E", secretAccessKey: "S"))
        // ~/.aws/credentials by default.
        let home = directory.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".aws"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: file, to: home.appendingPathComponent(".aws/credentials"))
        #expect(try Credentials.load(environment: ["HOME": home.path]).accessKeyID == "AKIADEFAULT")

        for (profile, expected) in [("missing", "profile 'missing' not found"), ("broken", "lacks aws_access_key_id or aws_secret_access_key")] {
            do throws(ObjectStorageError) {
                _ = try Credentials.load(environment: environment.merging(["AWS_PROFILE": profile]) { $1 })
                Issue.record("profile \(profile) accepted")
            } catch {
                #expect(error.description.contains(expected), "\(error)")
                #expect(!error.description.contains("defaultsecret") && !error.description.contains("AKIABROKEN"))
            }
        }
        do throws(ObjectStorageError) {
            _ = try Credentials.load(environment: ["HOME": directory.appendingPathComponent("nobody").path])
            Issue.record("no credentials accepted")
        } catch {
            #expect(error.description.contains("AWS_ACCESS_KEY_ID"), "\(error)")
        }
    }

    @Test("CHAT_MEDIA_STORE and the credentials together")
    func configurationFromEnvironment() throws {
        let configuration = try S3Configuration.fromEnvironment([
            "CHAT_MEDIA_STORE": "s3://media/chat?endpoint=http://localhost:9000",
            "AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S",
        ])
        #expect(configuration.location.bucket == "media" && configuration.credentials.accessKeyID == "A")
        #expect(throws: ObjectStorageError.self) { try S3Configuration.fromEnvironment([:]) }
    }
}
