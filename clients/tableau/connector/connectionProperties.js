// Driver properties for the chosen sign-in: user and password (the driver exchanges them for a
// bearer token in the Flight Handshake), a static token, or nothing; and the CA to trust for TLS.
(function propertiesbuilder(attr) {
    var props = {};
    var auth = attr[connectionHelper.attributeAuthentication];
    if (auth == "auth-user-pass") {
        props["user"] = attr[connectionHelper.attributeUsername];
        props["password"] = attr[connectionHelper.attributePassword];
    } else if (auth == "auth-pass") {
        props["token"] = attr[connectionHelper.attributePassword];
    }
    var rootCerts = attr["v-tls-root-certs"];
    if (attr[connectionHelper.attributeSSLMode] == "require" && rootCerts) {
        props["tlsRootCerts"] = rootCerts;
    }
    return props;
})
