// The Arrow Flight SQL JDBC driver's URL for the dialog's server, port and TLS choice.
// Credentials and certificates go in connectionProperties.js, never in the URL (Tableau logs URLs).
// The URL has no catalog= parameter: with driver 18.3.0 it makes closing a connection fail
// (apache/arrow-java#66); the server has a single catalog anyway.
(function dsbuilder(attr) {
    var server = attr[connectionHelper.attributeServer];
    var port = attr[connectionHelper.attributePort];
    var tls = attr[connectionHelper.attributeSSLMode] == "require";
    return ["jdbc:arrow-flight-sql://" + server + ":" + port + "/?useEncryption=" + (tls ? "true" : "false")];
})
