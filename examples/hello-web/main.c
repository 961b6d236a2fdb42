/* hello-web: a tiny HTTP/1.1 server on $HOST:$PORT (default 0.0.0.0:8080), one
   request per connection. Static, so it runs on an almost empty base image. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "routes.h"

static const char *reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    default: return "Error";
    }
}

int main(void) {
    const char *port_env = getenv("PORT");
    int port = port_env ? atoi(port_env) : 8080;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "hello-web: bad PORT %s\n", port_env);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    const char *host = getenv("HOST");
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (host && inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "hello-web: bad HOST %s\n", host);
        return 2;
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 64) != 0) {
        perror("hello-web: listen");
        return 1;
    }
    printf("hello-web listening on %s:%d\n", host ? host : "0.0.0.0", port);
    fflush(stdout);
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) continue;
        char req[2048];
        ssize_t n = read(c, req, sizeof req - 1);
        if (n > 0) {
            req[n] = '\0';
            char *eol = strpbrk(req, "\r\n");
            if (eol) *eol = '\0';
            char body[256], head[256];
            int status = route(req, body, sizeof body);
            int len = snprintf(head, sizeof head,
                               "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                               "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                               status, reason(status), strlen(body));
            if (write(c, head, (size_t)len) < 0 || write(c, body, strlen(body)) < 0) {
                /* the client went away */
            }
        }
        close(c);
    }
}
