"""The S3 error catalogue: one class per AWS error code.

Each class carries the AWS code (its class name), the HTTP status and the default
message from the AWS S3 API Reference ("Error responses" > "List of error codes").
Extra XML fields (BucketName, Key, ArgumentName, ...) travel in ``fields``.
No Flask and no XML here: ``s3/responses.py`` renders these.
"""
from __future__ import annotations


class S3Error(Exception):
    """Base of every error a client may see. Subclasses set status and message."""

    status = 500
    message = "We encountered an internal error. Please try again."

    def __init__(self, message: str | None = None, **fields: object) -> None:
        self.message = message or type(self).message
        self.fields = {k: str(v) for k, v in fields.items() if v is not None}
        self.headers: dict[str, str] = {}
        super().__init__(self.message)

    @property
    def code(self) -> str:
        return type(self).__name__


def _error(name: str, status: int, message: str) -> type[S3Error]:
    return type(name, (S3Error,), {"status": status, "message": message})


# 400
AuthorizationHeaderMalformed = _error("AuthorizationHeaderMalformed", 400, "The authorization header is malformed.")
AuthorizationQueryParametersError = _error("AuthorizationQueryParametersError", 400, "Error parsing the X-Amz-Credential parameter.")
BadRequest = _error("BadRequest", 400, "Bad Request")
BadDigest = _error("BadDigest", 400, "The Content-MD5 you specified did not match what we received.")
EntityTooLarge = _error("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size.")
EntityTooSmall = _error("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size.")
IncompleteBody = _error("IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header.")
InvalidArgument = _error("InvalidArgument", 400, "Invalid Argument")
InvalidBucketName = _error("InvalidBucketName", 400, "The specified bucket is not valid.")
InvalidEncryptionAlgorithmError = _error("InvalidEncryptionAlgorithmError", 400, "The Encryption request you specified is not valid. Supported value: AES256.")
InvalidDigest = _error("InvalidDigest", 400, "The Content-MD5 you specified is not valid.")
InvalidLocationConstraint = _error("InvalidLocationConstraint", 400, "The specified location-constraint is not valid.")
InvalidPart = _error("InvalidPart", 400, "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
InvalidPartOrder = _error("InvalidPartOrder", 400, "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
InvalidPolicyDocument = _error("InvalidPolicyDocument", 400, "The content of the form does not meet the conditions specified in the policy document.")
InvalidRequest = _error("InvalidRequest", 400, "Invalid Request")
InvalidTag = _error("InvalidTag", 400, "The tag provided was not a valid tag.")
InvalidStorageClass = _error("InvalidStorageClass", 400, "The storage class you specified is not valid.")
InvalidURI = _error("InvalidURI", 400, "Couldn't parse the specified URI.")
KeyTooLongError = _error("KeyTooLongError", 400, "Your key is too long.")
MalformedACLError = _error("MalformedACLError", 400, "The XML you provided was not well-formed or did not validate against our published schema.")
MalformedPolicy = _error("MalformedPolicy", 400, "Policies must be valid JSON and the first byte must be '{'")
AccessControlListNotSupported = _error("AccessControlListNotSupported", 400, "The bucket does not allow ACLs")
InvalidBucketAclWithObjectOwnership = _error("InvalidBucketAclWithObjectOwnership", 400, "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting")
MalformedPOSTRequest = _error("MalformedPOSTRequest", 400, "The body of your POST request is not well-formed multipart/form-data.")
MalformedXML = _error("MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema.")
MaxPostPreDataLengthExceededError = _error("MaxPostPreDataLengthExceededError", 400, "Your POST request fields preceding the upload file were too large.")
MaxMessageLengthExceeded = _error("MaxMessageLengthExceeded", 400, "Your request was too big.")
MetadataTooLarge = _error("MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size.")
MissingSecurityHeader = _error("MissingSecurityHeader", 400, "Your request was missing a required header.")
RequestHeaderSectionTooLarge = _error("RequestHeaderSectionTooLarge", 400, "Your request header section exceeds the maximum allowed size.")
RequestTimeout = _error("RequestTimeout", 400, "Your socket connection to the server was not read from or written to within the timeout period.")
XAmzContentSHA256Mismatch = _error("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.")
UnresolvableGrantByEmailAddress = _error("UnresolvableGrantByEmailAddress", 400, "The email address you provided does not match any account on record.")
UnexpectedContent = _error("UnexpectedContent", 400, "This request does not support content.")
IllegalLocationConstraintException = _error("IllegalLocationConstraintException", 400, "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.")



class KmsNotFound(S3Error):
    """An SSE-KMS key id that names no key of the key ring (AWS passes KMS's code on)."""
    status = 400
    message = "Invalid keyId"
    code = "KMS.NotFoundException"


# 403
AccessDenied = _error("AccessDenied", 403, "Access Denied")
# A refused CORS preflight (the code S3 sends, absent from its error table).
AccessForbidden = _error("AccessForbidden", 403, "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.")
InvalidAccessKeyId = _error("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records.")
RequestTimeTooSkewed = _error("RequestTimeTooSkewed", 403, "The difference between the request time and the server's time is too large.")
SignatureDoesNotMatch = _error("SignatureDoesNotMatch", 403, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")

# 404
NoSuchBucket = _error("NoSuchBucket", 404, "The specified bucket does not exist")
NoSuchKey = _error("NoSuchKey", 404, "The specified key does not exist.")
NoSuchUpload = _error("NoSuchUpload", 404, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
NoSuchVersion = _error("NoSuchVersion", 404, "The specified version does not exist.")
NoSuchObjectLockConfiguration = _error("NoSuchObjectLockConfiguration", 404, "The specified object does not have a ObjectLock configuration")
# A bucket configuration that was never set (the Get* of each; see s3/handlers/bucket_config.py).
NoSuchBucketPolicy = _error("NoSuchBucketPolicy", 404, "The bucket policy does not exist")
NoSuchCORSConfiguration = _error("NoSuchCORSConfiguration", 404, "The CORS configuration does not exist")
NoSuchLifecycleConfiguration = _error("NoSuchLifecycleConfiguration", 404, "The lifecycle configuration does not exist")
NoSuchPublicAccessBlockConfiguration = _error("NoSuchPublicAccessBlockConfiguration", 404, "The public access block configuration was not found")
NoSuchTagSet = _error("NoSuchTagSet", 404, "The TagSet does not exist")
NoSuchWebsiteConfiguration = _error("NoSuchWebsiteConfiguration", 404, "The specified bucket does not have a website configuration")
ObjectLockConfigurationNotFoundError = _error("ObjectLockConfigurationNotFoundError", 404, "Object Lock configuration does not exist for this bucket")
OwnershipControlsNotFoundError = _error("OwnershipControlsNotFoundError", 404, "The bucket ownership controls were not found")
ReplicationConfigurationNotFoundError = _error("ReplicationConfigurationNotFoundError", 404, "The replication configuration was not found")
ServerSideEncryptionConfigurationNotFoundError = _error("ServerSideEncryptionConfigurationNotFoundError", 404, "The server side encryption configuration was not found")

# 405, 409, 411, 412, 416
MethodNotAllowed = _error("MethodNotAllowed", 405, "The specified method is not allowed against this resource.")
BucketAlreadyExists = _error("BucketAlreadyExists", 409, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.")
BucketAlreadyOwnedByYou = _error("BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket succeeded and you already own it.")
BucketNotEmpty = _error("BucketNotEmpty", 409, "The bucket you tried to delete is not empty")
InvalidBucketState = _error("InvalidBucketState", 409, "The request is not valid with the current state of the bucket.")
OperationAborted = _error("OperationAborted", 409, "A conflicting conditional operation is currently in progress against this resource. Try again.")
MissingContentLength = _error("MissingContentLength", 411, "You must provide the Content-Length HTTP header.")
PreconditionFailed = _error("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold")
InvalidPartNumber = _error("InvalidPartNumber", 416, "The requested partnumber is not satisfiable")
InvalidRange = _error("InvalidRange", 416, "The requested range is not satisfiable")

# 5xx
InternalError = _error("InternalError", 500, "We encountered an internal error. Please try again.")
NotImplemented = _error("NotImplemented", 501, "A header you provided implies functionality that is not implemented.")  # noqa: A001
ServiceUnavailable = _error("ServiceUnavailable", 503, "Service is unable to handle request.")
SlowDown = _error("SlowDown", 503, "Please reduce your request rate.")
