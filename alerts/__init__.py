"""Alert emails: rules in ``config/alerts.yaml`` say which new posts are mailed to whom.

``rules`` loads and checks the rules file, ``query`` turns a rule into an Elasticsearch query, ``message``
builds the email, ``mailer`` talks SMTP, ``state`` remembers what was sent (in Elasticsearch) and ``service``
ties one alert run together. ``cli`` adds the ``yuqing alert`` sub-command.
"""
